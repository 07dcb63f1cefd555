"""A rendered e-mail Message (or a fax for an e-mail gateway) → the bytes of the MIME
message a contact (or the gateway) receives.

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
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime, parseaddr

from dispatcher.keys import Keys
from dispatcher.render.templates import Message, one_line

_ENCODED_WORD_BYTES = 36  # 36 bytes of UTF-8 → 48 base64 characters → a 60-character word
_LONGEST_WORD = 60  # a plain word longer than this is sent encoded, so it can be split
LINE_LIMIT = 78  # RFC 5322 2.1.1: a header line SHOULD stay within 78 characters...
HARD_LINE_LIMIT = 998  # ...and MUST stay within 998
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
                message_id: str | None = None, reply_to: str | None = None) -> bytes:
    """The MIME e-mail for ``message``; ``from_mailbox`` and ``reply_to`` are
    ``Name <user@host>``."""
    head = email_head(message, from_mailbox, sent_at, message_id, reply_to)
    return head.encode("ascii") + b"\r\n" + _base64(message.body.encode("utf-8"))


def email_head(message: Message, from_mailbox: str, sent_at: datetime,
               message_id: str | None = None, reply_to: str | None = None) -> str:
    """The e-mail's header lines, each folded to at most 78 characters where it can be
    (an address longer than that is never split)."""
    return _head(mailbox_words(recipient_name(message), message.address),
                 message.subject or "", from_mailbox, sent_at, message_id, reply_to,
                 _TEXT_CONTENT)


def build_fax_email(pdf: bytes, recipient: str, merchant: str, from_mailbox: str,
                    sent_at: datetime, message_id: str) -> bytes:
    """The e-mail a fax gateway turns into a fax to ``recipient``: the fax's PDF attached
    to a one-line text part, headers written as every other e-mail's are."""
    head = _head([recipient], f"FAX {merchant}", from_mailbox, sent_at,
                 message_id, None,
                 (f'Content-Type: multipart/mixed; boundary="{_BOUNDARY}"',))
    parts = [
        (_TEXT_CONTENT, b"FAX\r\n"),
        (("Content-Type: application/pdf", "Content-Transfer-Encoding: base64",
          'Content-Disposition: attachment; filename="notice.pdf"'), pdf),
    ]
    body = b"".join(f"--{_BOUNDARY}\r\n{_lines(headers)}\r\n".encode("ascii") + _base64(data)
                    for headers, data in parts)
    return head.encode("ascii") + b"\r\n" + body + f"--{_BOUNDARY}--\r\n".encode("ascii")


_TEXT_CONTENT = ('Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: base64")
_BOUNDARY = "=_dispatcher_part"  # "=_" never occurs in base64, the only encoding inside


def _head(to_words: list[str], subject: str, from_mailbox: str, sent_at: datetime,
          message_id: str | None, reply_to: str | None, content: tuple[str, ...]) -> str:
    headers = [
        folded("From", mailbox_words(*mailbox_parts(from_mailbox))),
        folded("To", to_words),
    ]
    if reply_to:
        headers.append(folded("Reply-To", mailbox_words(*mailbox_parts(reply_to))))
    headers += [
        folded("Subject", text_words(one_line(subject))),
        f"Date: {format_datetime(sent_at)}",
        ": ".join(AUTO_SUBMITTED),
    ]
    if message_id:
        headers.append(f"Message-ID: {one_line(message_id)}")
    return _lines([*headers, "MIME-Version: 1.0", *content])


def _lines(lines: Iterable[str]) -> str:
    return "".join(f"{line}\r\n" for line in lines)


def _base64(data: bytes) -> bytes:
    """``data`` in base64 lines of 76 characters, each ended by CRLF."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def longest_line(head: str) -> int:
    return max((len(line.encode()) for line in head.split("\r\n")), default=0)


@functools.lru_cache(maxsize=64)
def mailbox_parts(mailbox_text: str) -> tuple[str, str]:
    """``(name, address)`` of ``Name <user@host>``; the from address is parsed once, not
    once a message."""
    return parseaddr(mailbox_text)


def folded(name: str, words: list[str]) -> str:
    """``Name: word word …``, a line break (CRLF and a space) before a word that would
    pass 78 characters."""
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > LINE_LIMIT and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += f" {word}"
    return "\r\n".join(lines)


def mailbox_words(name: str, address: str) -> list[str]:
    """``name <address>`` as foldable words, the name as is, quoted or encoded."""
    name = one_line(name)
    if not name:
        return [f"<{address}>"]
    if _PLAIN_PHRASE.match(name) and all(len(w) <= _LONGEST_WORD for w in name.split()):
        return [*name.split(), f"<{address}>"]
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    pieces = quoted.split(" ")  # a quoted string folds at its spaces, losing none
    if _PLAIN_TEXT.match(name) and all(len(p) <= _LONGEST_WORD for p in pieces):
        return [*pieces, f"<{address}>"]
    return [*encoded_words(name), f"<{address}>"]


def text_words(text: str) -> list[str]:
    """An unstructured value (the subject) as foldable words: plain words as they are,
    the rest as RFC 2047 encoded words."""
    if _PLAIN_TEXT.match(text) and all(len(w) <= _LONGEST_WORD for w in text.split()):
        return text.split()
    return encoded_words(text)


def encoded_words(text: str) -> list[str]:
    """RFC 2047 words of at most 60 characters (whitespace between two encoded words is
    not shown, so the text comes back whole)."""
    words, chunk = [], ""
    for char in text:
        if len((chunk + char).encode("utf-8")) > _ENCODED_WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words]


def readable(raw: bytes) -> tuple[list[str], str]:
    """The headers as a mail program shows them (RFC 2047 decoded), and the text body."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    mail = message_from_bytes(raw)
    headers = [f"{name}: {make_header(decode_header(_unfolded(value)))}"
               for name, value in mail.items()
               if name not in ("Content-Type", "Content-Transfer-Encoding", "MIME-Version")]
    payload = mail.get_payload(decode=True)
    body = payload.decode(mail.get_content_charset() or "utf-8") if isinstance(
        payload, bytes) else ""
    return headers, body


def _unfolded(value: str) -> str:
    """A header value as one line (RFC 5322 2.2.3: a line break before a space goes)."""
    return re.sub(r"\r?\n(?=[ \t])", "", value)
