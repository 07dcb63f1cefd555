"""Reading a mail that came back: a bounce, a delay warning, a success DSN, or something
else (an auto-reply, a complaint). Pure: bytes in, a MailReading out.

RFC 3464 delivery reports are read with the standard library; other bounce formats (each
mail system has its own) through flufl.bounce, with the status code taken from the text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from email import message_from_bytes
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum

import flufl.bounce

from dispatcher.receipts.bounce_reasons import is_dead, reason_of
from dispatcher.receipts.mail_text import (
    addresses_in,
    looks_returned,
    own_part,
    status_in,
    status_near,
    subject_of,
    text_of,
)

# flufl.bounce logs a traceback when one of its detectors trips over a mail, then raises;
# _heuristic takes that as "nothing found", so the traceback is only noise on the console.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


class MailKind(StrEnum):
    BOUNCE = "bounce"            # at least one recipient failed
    DELAY = "delay"              # still being retried by the mail system
    DELIVERED = "delivered"      # a success DSN
    NOT_A_BOUNCE = "not-a-bounce"


@dataclass(frozen=True)
class RecipientResult:
    address: str
    status: str | None  # the enhanced status code, "5.1.1"
    action: str         # failed | delayed | delivered
    detail: str

    context: str = ""   # the report's words around this recipient, for the reason
    gateway: bool = False  # the report is a filtering appliance's: it proves no address dead
    named: bool = True  # the report's own words name this recipient (else: the message)

    @property
    def hard(self) -> bool:
        """A permanent failure (5.x.x): the delivery counts as bounced."""
        return self.action == "failed" and (self.status or "").startswith("5")

    @property
    def reason(self) -> str:
        """Why, in Sisimai's words (``userunknown``, ``mailboxfull``, ``filtered``…)."""
        if not self.named:  # words about the whole message tell before a generic code
            return reason_of(self.status, self.context, self.detail)
        return reason_of(self.status, self.detail, self.context)

    @property
    def dead(self) -> bool:
        """The address itself is dead (no such user, no such domain): not to be sent to
        again. Narrower than ``hard``: a block or a full mailbox fails hard, and the
        merchant is still there."""
        return self.action == "failed" and not self.gateway and is_dead(
            self.status, self.reason, self.detail, self.context, self.address)


@dataclass(frozen=True)
class MailReading:
    kind: MailKind
    recipients: tuple[RecipientResult, ...]
    envelope_to: str         # the headers that name where the report was sent
    envid: str | None        # Original-Envelope-Id of a DSN
    returned_ids: tuple[str, ...]  # Message-IDs of the returned original message
    text: str                # the subject and the report's own text


_ADDRESS_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To",
                    "Return-Path", "X-Failed-Recipients")
_AUTO_REPLY = re.compile(r"auto[- ]?repl|out of (the )?office|vacation|autoresponder|"
                         r"自動応答|不在", re.IGNORECASE)
_DELAY_TEXT = re.compile(r"will (be retried|continue to try|keep trying)|"
                         r"warning message only|temporary failure report|delayed|"
                         r"not yet been delivered|still trying", re.IGNORECASE)


def read_bounce(raw: bytes) -> MailReading:
    mail = message_from_bytes(raw)
    envelope_to = " ".join(str(v) for name in _ADDRESS_HEADERS for v in mail.get_all(name, []))
    returned = tuple(_returned_ids(mail))
    text = f"{subject_of(mail)}\n{text_of(mail)}"
    report = _delivery_status(mail)
    if report is not None:
        envid, recipients = report
        recipients = _in_context(recipients, mail)
        return MailReading(_kind(recipients), recipients, envelope_to, envid, returned, text)
    if _is_feedback_or_auto_reply(mail):
        return MailReading(MailKind.NOT_A_BOUNCE, (), envelope_to, None, returned, text)
    recipients = _in_context(_heuristic(mail), mail)
    return MailReading(_kind(recipients), recipients, envelope_to, None, returned, text)


# headers of filtering appliances (ActiveHunter, SurfControl, MailFoundry, m-FILTER): what
# they refuse, they refuse for the content, whatever their words say of the address
_GATEWAYS = ("X-AHMAILID", "X-SurfControl", "X-MailFoundry", "X-MFILTER")


def _in_context(recipients: tuple[RecipientResult, ...], mail: Message
                ) -> tuple[RecipientResult, ...]:
    """Each recipient with the report's own words around it (where the mail system says
    at which step it refused: RCPT TO, or after DATA)."""
    own = own_part(text_of(mail))
    gateway = any(mail.get(name) for name in _GATEWAYS)
    return tuple(replace(r, context=_around(own, r.address), gateway=gateway,
                         named=r.address in own.lower())
                 for r in recipients)


def _around(text: str, address: str) -> str:
    """The words near ``address``; the report's first words if it does not name it."""
    at = text.lower().find(address)
    return text[max(0, at - 200):at + 400] if at >= 0 else text[:600]


def _kind(recipients: tuple[RecipientResult, ...]) -> MailKind:
    actions = {r.action for r in recipients}
    if "failed" in actions:
        return MailKind.BOUNCE
    if "delayed" in actions:
        return MailKind.DELAY
    if "delivered" in actions:
        return MailKind.DELIVERED
    return MailKind.NOT_A_BOUNCE


def _delivery_status(mail: Message) -> tuple[str | None, tuple[RecipientResult, ...]] | None:
    """A DSN's envelope id and its per-recipient results, if the mail holds one."""
    for part in mail.walk():
        if part.get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
            continue
        blocks = _status_blocks(part)
        if not blocks:
            continue
        envid = blocks[0].get("Original-Envelope-Id")
        recipients = tuple(r for block in blocks[1:] if (r := _dsn_recipient(block)))
        if recipients:
            return (str(envid).strip() if envid else None), recipients
    return None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return list(payload)
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return []
    chunks = re.split(rb"\r?\n\s*\r?\n", text.strip())
    return [message_from_bytes(chunk + b"\n\n") for chunk in chunks if chunk.strip()]


def _dsn_recipient(block: Message) -> RecipientResult | None:
    named = block.get("Final-Recipient") or block.get("Original-Recipient")
    if not named:
        return None
    address = _address(str(named).partition(";")[2] or str(named))
    action = str(block.get("Action", "")).strip().lower()
    status = status_in(str(block.get("Status", "")))
    detail = " ".join(str(block.get("Diagnostic-Code", "")).split())
    if action not in ("failed", "delayed", "delivered", "relayed", "expanded"):
        action = "failed" if (status or "").startswith(("4", "5")) else "delayed"
    if action in ("relayed", "expanded"):
        action = "delivered"
    status = status or status_in(detail)
    if status and status.startswith("2"):
        action = "delivered"
    return RecipientResult(address, status, action, detail)


def _address(text: str) -> str:
    found = getaddresses([text.strip()])
    address = found[0][1] if found else text
    return address.strip().strip("<>").lower()


def _is_feedback_or_auto_reply(mail: Message) -> bool:
    if mail.get_content_type() == "multipart/report" and \
            mail.get_param("report-type") == "feedback-report":
        return True
    if looks_returned(mail):  # Exim marks its bounces auto-replied too
        return False
    auto = str(mail.get("Auto-Submitted", "")).lower()
    if auto.startswith("auto-replied") or mail.get("X-Autoreply") or mail.get("X-Autorespond"):
        return True
    return bool(_AUTO_REPLY.search(str(mail.get("Subject", ""))))


def _heuristic(mail: Message) -> tuple[RecipientResult, ...]:
    """A bounce in a mail system's own format: flufl.bounce finds the addresses, the text
    around each gives its status."""
    try:
        temporary, permanent = flufl.bounce.all_failures(mail)
    except Exception:  # a detector that trips over a malformed mail: nothing found
        temporary = permanent = frozenset()
    text = text_of(mail)
    if not temporary and not permanent and looks_returned(mail):
        failed = [a for _, a in getaddresses(mail.get_all("X-Failed-Recipients", []))]
        failed += addresses_in(own_part(text), mail)
        permanent = frozenset(a.lower().encode() for a in dict.fromkeys(failed) if a)
    delayed = bool(_DELAY_TEXT.search(text + " " + str(mail.get("Subject", ""))))
    results = []
    for raw_address in sorted(permanent | temporary):
        address = raw_address.decode("utf-8", "replace").strip().strip("<>").lower()
        status, detail = status_near(text, address)
        hard_reported = raw_address in permanent
        action = "delayed" if delayed and not hard_reported else "failed"
        if status is None and action == "failed":
            status = "5.0.0" if hard_reported else "4.0.0"
        results.append(RecipientResult(address, status, action, detail))
    return tuple(results)


def _returned_ids(mail: Message) -> list[str]:
    """Message-IDs in the returned message or headers (what we sent), not the report's."""
    found = []
    for part in mail.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner_mail = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(inner_mail, Message) and inner_mail.get("Message-ID"):
                found.append(str(inner_mail["Message-ID"]).strip())
        elif part.get_content_type() == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found += re.findall(r"(?im)^message-id:\s*(<[^>\s]+>)", payload.decode(
                    "utf-8", "replace"))
    if not found:
        text = text_of(mail)
        found += re.findall(r"(?im)^\s*message-id:\s*(<[^>\s]+>)", text)
    return found
