"""The words of a returned mail: its own text (not the copy of our message), the status
codes and addresses in it, and whether it looks like a mail system's report. Pure."""

from __future__ import annotations

import re
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")
def status_in(text: str) -> str | None:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


_RETURNED_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery|mail administrator",
                            re.IGNORECASE)
_RETURNED_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status|fail|notification|problem)|failure notice|"
    r"not delivered|could not be delivered|mail delivery|delivery report|nondeliver|"
    r"rejected|bounce|配信|不達|エラー", re.IGNORECASE)
_ORIGINAL_STARTS = re.compile(r"(?im)^(received|return-path|dkim-signature|message-id):")
_ADDRESS = re.compile(r"[\w.+=-]+@[\w-]+(?:\.[\w-]+)+")
# A line that is a bracketed address, after a label or alone: how Japanese carriers' mail
# systems (au/EZweb, KDDI) name the recipient they could not deliver to, with no status
# code: "<user@ezweb.ne.jp>", "Could not be delivered to: <user@dion.ne.jp>".
_LISTED = re.compile(r"(?im)^[ \t]*(?:[\w ()']+:[ \t]*)?<([\w.+=-]+@[\w-]+(?:\.[\w-]+)+)>[ \t]*$")


# What a report's own first words say, where its sender and subject do not (KDDI's
# "Subject: Mail" from no-reply@…dion.ne.jp)
_RETURNED_TEXT = re.compile(
    r"could not be delivered to|rejected by a remote mail server|"
    r"送信できませんでした|配信できませんでした|お届けできませんでした", re.IGNORECASE)


def looks_returned(mail: Message) -> bool:
    """A mail system's report about a mail it could not deliver, by who sent it, its
    subject or its first words (for formats flufl.bounce does not know)."""
    return bool(_RETURNED_FROM.search(str(mail.get("From", ""))) or
                _RETURNED_SUBJECT.search(subject_of(mail)) or
                _RETURNED_TEXT.search(own_part(text_of(mail))[:2000]))


def subject_of(mail: Message) -> str:
    """The Subject as words: encoded words decoded, and raw 8-bit UTF-8 (as KDDI's mail
    system writes 「メールエラー通知」) read as UTF-8, not as replacement marks."""
    try:
        parts = decode_header(mail.get("Subject", ""))
    except (ValueError, LookupError):
        return str(mail.get("Subject", ""))
    words = []
    for part, charset in parts:
        if isinstance(part, str):
            words.append(part)
        elif charset in (None, "unknown-8bit") or not _known(charset):
            words.append(part.decode("utf-8", "replace"))
        else:
            words.append(part.decode(charset, "replace"))
    return "".join(words)


def own_part(text: str) -> str:
    """The report's own words, before the copy of the original mail's headers."""
    original = _ORIGINAL_STARTS.search(text)
    return text[:original.start()] if original else text


def addresses_in(text: str, mail: Message) -> list[str]:
    """Addresses the report's text names next to a status or reply code, or on a line of
    their own in angle brackets, other than the report's own sender and recipient."""
    own = {a.lower() for _, a in getaddresses([str(mail.get(h, "")) for h in ("From", "To")])}
    listed = {a.lower() for a in _LISTED.findall(text)}
    found = []
    for address in dict.fromkeys(a.lower().strip(".") for a in _ADDRESS.findall(text)):
        if address in own or "mailer-daemon" in address or "postmaster" in address:
            continue
        at = text.lower().find(address)
        if address in listed or _STATUS.search(text[at:at + 600]) or \
                _REPLY.search(text[at:at + 600]) or _STATUS.search(text[max(0, at - 300):at]):
            found.append(address)
    return found


def status_near(text: str, address: str) -> tuple[str | None, str]:
    """The status code written nearest after the address (or anywhere), and that line."""
    at = text.lower().find(address)
    window = text[at:at + 600] if at >= 0 else text
    for candidate in (window, text):
        match = _STATUS.search(candidate)
        if match:
            return ".".join(match.groups()), line_at(candidate, match.start())
        reply = _REPLY.search(candidate)
        if reply:
            return f"{reply.group(1)}.0.0", line_at(candidate, reply.start())
    return None, ""


def line_at(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return " ".join(text[start:end if end >= 0 else None].split())[:300]


def text_of(mail: Message) -> str:
    """The mail's own text parts, not the returned original."""
    texts = []
    for part in mail.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            break
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(_decoded(payload, part.get_content_charset() or "utf-8"))
    return "\n".join(texts)


def _decoded(payload: bytes, charset: str) -> str:
    """The text in its declared charset, or in UTF-8 where that is what it really is (a
    carrier's report labelled ISO-2022-JP, written in UTF-8)."""
    try:
        return payload.decode(charset)
    except (UnicodeError, LookupError):
        try:
            return payload.decode("utf-8")
        except UnicodeError:
            return payload.decode(charset if _known(charset) else "utf-8", "replace")


def _known(charset: str) -> bool:
    try:
        "".encode(charset)
    except LookupError:
        return False
    return True
