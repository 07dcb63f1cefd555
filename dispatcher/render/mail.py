"""A rendered e-mail Message → the bytes of the MIME message a contact receives.

The bytes are written directly (RFC 5322 headers with RFC 2047 encoded words, a base64
UTF-8 body): Python's EmailMessage takes about 5 ms a message to build and flatten, which
would make it the slowest part of a broadcast. Every header value is folded to one line
first, so no contact field (a merchant name with a line break, say) can add or break a
header.
"""

from __future__ import annotations

import base64
import functools
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from dispatcher.keys import Keys
from dispatcher.render.templates import Message, one_line

_ENCODED_WORD_BYTES = 45  # 45 bytes of UTF-8 → 60 base64 characters → a 72-character word
_PLAIN_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
_PLAIN_TEXT = re.compile(r"^[\x20-\x7e]*$")


# RFC 3834: a message no person wrote; out-of-office replies and the like are not sent back
AUTO_SUBMITTED = ("Auto-Submitted", "auto-generated")


MESSAGE_ID = "message-id"  # what the deployment's key signs it for
MESSAGE_ID_LENGTH = 32


def message_id_text(notice_key: str, contact_id: str, channel: str) -> str:
    """What a delivery's Message-ID signs: the same however often it is sent."""
    return f"{notice_key}|{contact_id}|{channel}"


def message_id_domain(from_mailbox: str) -> str:
    return mailbox_parts(from_mailbox)[1].rpartition("@")[2] or "dispatcher.invalid"


def message_id(keys: Keys, notice_key: str, contact_id: str, channel: str,
               from_mailbox: str) -> str:
    """The delivery's Message-ID, ``<signature@domain>``: known before it is sent, and
    nobody without the key can make one that matches a delivery."""
    signature = keys.sign(MESSAGE_ID, message_id_text(notice_key, contact_id, channel),
                          MESSAGE_ID_LENGTH)
    return f"<{signature}@{message_id_domain(from_mailbox)}>"


def recipient_name(message: Message) -> str:
    contact = message.contact
    return one_line(f"{contact.merchant} {contact.name}".strip())


def build_email(message: Message, from_mailbox: str, sent_at: datetime,
                message_id: str | None = None) -> bytes:
    """The MIME e-mail for ``message``; ``from_mailbox`` is ``Name <user@host>``."""
    from_name, from_address = mailbox_parts(from_mailbox)
    headers = [
        ("From", mailbox(from_name, from_address)),
        ("To", mailbox(recipient_name(message), message.address)),
        ("Subject", encoded_text(one_line(message.subject or ""))),
        ("Date", format_datetime(sent_at)),
        AUTO_SUBMITTED,
    ]
    if message_id:
        headers.append(("Message-ID", one_line(message_id)))
    headers += [
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "base64"),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    body = base64.encodebytes(message.body.encode("utf-8")).replace(b"\n", b"\r\n")
    return head.encode("ascii") + b"\r\n" + body


@functools.lru_cache(maxsize=64)
def mailbox_parts(mailbox_text: str) -> tuple[str, str]:
    """``(name, address)`` of ``Name <user@host>``; the from address is parsed once, not
    once a message."""
    return parseaddr(mailbox_text)


def mailbox(name: str, address: str) -> str:
    """``name <address>``, the name quoted or encoded as it needs."""
    name = one_line(name)
    if not name:
        return f"<{address}>"
    if _PLAIN_PHRASE.match(name):
        return f"{name} <{address}>"
    if _PLAIN_TEXT.match(name):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{encoded_text(name)} <{address}>"


def encoded_text(text: str) -> str:
    """``text`` as a header value: as is if plain ASCII, else RFC 2047 words, folded."""
    if _PLAIN_TEXT.match(text):
        return text
    words, chunk = [], ""
    for char in text:
        if len((chunk + char).encode("utf-8")) > _ENCODED_WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(word.encode('utf-8')).decode('ascii')}?=" for word in words)


def mime_bytes(mail: EmailMessage) -> bytes:
    """A ready EmailMessage (the fax gateway's, with its PDF) as bytes with CRLF lines."""
    from email import policy
    return mail.as_bytes(policy=policy.SMTP)


def readable(raw: bytes) -> tuple[list[str], str]:
    """The headers as a mail program shows them (RFC 2047 decoded), and the text body."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    mail = message_from_bytes(raw)
    headers = [f"{name}: {make_header(decode_header(value))}" for name, value in mail.items()
               if name not in ("Content-Type", "Content-Transfer-Encoding", "MIME-Version")]
    payload = mail.get_payload(decode=True)
    body = payload.decode(mail.get_content_charset() or "utf-8") if isinstance(
        payload, bytes) else ""
    return headers, body
