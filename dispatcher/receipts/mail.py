"""Mail that comes back (bounces, delay warnings, success DSNs, a fax gateway's result
mails) matched to the delivery it is about, and turned into ledger reports.

A mail is matched by, in order: the VERP token in the address it was sent to, the DSN's
envelope id, the Message-ID of the returned original. Each is signed with the deployment's
key (see ``send.DeliveryTokens``), so a forged one matches nothing: a mail whose token or
envelope id does not verify is counted as forged and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatcher.ledger import (
    DeliveryRecord,
    DeliveryState,
    ForgedReport,
    Ledger,
    NoticeRecord,
    Report,
    Suppression,
)
from dispatcher.logs import event
from dispatcher.receipts.bounces import MailKind, MailReading, RecipientResult, read_bounce
from dispatcher.send import WRONG_NUMBER, DeliveryTokens, delivery_tag, fax_result, tag_id
from dispatcher.table import Channel, Config, FaxGatewayReceipts, RetryPolicy, notice_key

log = logging.getLogger("dispatcher.receipts")

Found = tuple[DeliveryRecord, NoticeRecord]


@dataclass(frozen=True)
class MailResult:
    """One mail read: what it says, which delivery it is about, what the ledger learns."""

    name: str
    reading: MailReading
    delivery: DeliveryRecord | None
    matched_by: str | None
    report: Report | None
    forged_report: ForgedReport | None = None  # its token did not verify: kept, moves nothing

    @property
    def forged(self) -> bool:
        return self.forged_report is not None

    def suppression(self, now: datetime) -> Suppression | None:
        """The address to suppress: the matched delivery's, if the mail says it is dead
        (Sisimai's sense), or that the fax number is not in service. Only a mail matched to
        one of our deliveries counts: a forged or stray bounce suppresses nothing."""
        if self.delivery is None:
            return None
        if self.delivery.channel == Channel.FAX.value:
            if self.report is None or self.report.code != WRONG_NUMBER:
                return None
            return Suppression(Channel.FAX.value, self.delivery.address,
                               "fax number not in service", self.report.detail, self.name,
                               now)
        if self.delivery.channel != Channel.EMAIL.value:
            return None
        result = _result_for(self.reading, self.delivery.address)
        if result is None or not result.dead:
            return None
        return Suppression(Channel.EMAIL.value, self.delivery.address,
                           f"bounce {result.reason} {result.status or ''}".strip(),
                           result.detail, self.name, now)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "kind": self.reading.kind.value,
            "recipients": [{"address": r.address, "status": r.status, "hard": r.hard,
                            "reason": r.reason, "dead": r.dead}
                           for r in self.reading.recipients],
            "delivery": self.delivery.id if self.delivery else None,
            "matched_by": self.matched_by,
            "state": self.report.state.value if self.report and self.report.state else None,
            "forged": self.forged,
        }


@dataclass
class MailMatcher:
    """Finds the delivery a returned mail is about, in one ledger."""

    ledger: Ledger
    config: Config
    tokens: DeliveryTokens
    _by_message_id: dict[str, int] | None = field(default=None, init=False)
    _known: dict[int, Found] = field(default_factory=dict, init=False)

    def forget(self) -> None:
        """Drop what was looked up: deliveries sent since are matched too (a long-lived
        matcher, the daemon's, forgets before each read of the mailbox)."""
        self._by_message_id = None
        self._known.clear()

    async def prefetch(self, readings: Iterable[MailReading]) -> None:
        """Look up, in one query, every delivery these mails name by token or envelope id."""
        ids: set[int] = set()
        for reading in readings:
            verified = [self.tokens.tag_of(token)
                        for token in self.tokens.tokens_in(reading.envelope_to)]
            if reading.envid:
                verified.append(self.tokens.tag_of_envid(reading.envid))
            ids.update(i for v in verified if v.tag and (i := tag_id(v.tag)) is not None)
        wanted = ids - self._known.keys()
        if wanted:
            self._known.update(await self.ledger.deliveries_by_id(wanted))

    async def match(self, reading: MailReading) -> tuple[Found | None, str | None, bool]:
        """(the delivery and its notice, how it was matched, whether a token was forged).
        A token that verifies decides: a forged one is not outvoted by a Message-ID."""
        tokens = self.tokens.tokens_in(reading.envelope_to)
        named = [("token", self.tokens.tag_of(token)) for token in tokens]
        if reading.envid:
            named.append(("envid", self.tokens.tag_of_envid(reading.envid)))
        for matched_by, verified in named:
            found = await self._by_tag(verified.tag) if verified.tag else None
            if found:
                return found, matched_by, False
        if any(verified.forged for _, verified in named):
            return None, None, True
        for returned in reading.returned_ids:
            delivery_id = (await self._message_ids()).get(returned.strip())
            if delivery_id is not None and (found := await self._by_id(delivery_id)):
                return found, "message-id", False
        return None, None, False

    async def _by_tag(self, tag: str) -> Found | None:
        """The delivery a tag names, if the tag is this ledger's (not a rehearsal's)."""
        delivery_id = tag_id(tag)
        found = await self._by_id(delivery_id) if delivery_id is not None else None
        if found and delivery_tag(found[1], found[0].id) == tag:
            return found
        return None

    async def _by_id(self, delivery_id: int) -> Found | None:
        if delivery_id in self._known:
            return self._known[delivery_id]
        return (await self.ledger.deliveries_by_id([delivery_id])).get(delivery_id)

    async def _message_ids(self) -> dict[str, int]:
        if self._by_message_id is None:
            from_mailbox = self.config.messages.mail_from
            self._by_message_id = {
                message_id: d.id
                for d, n in await self.ledger.sent_on([Channel.EMAIL.value, Channel.FAX.value])
                for message_id in self.tokens.message_ids(
                    notice_key(n.window_id, n.slot, n.phase), d.contact_id, d.channel,
                    from_mailbox)}
        return self._by_message_id


def report_of(reading: MailReading, raw: bytes, delivery: DeliveryRecord, source: str,
              gateway: FaxGatewayReceipts, retry: RetryPolicy | None = None,
              now: datetime | None = None, draw: float = 0.5) -> Report:
    """What a returned mail tells the ledger about ``delivery`` (with ``retry``, a fax
    gateway's busy line is faxed again, ``now`` and ``draw`` timing it). Pure."""
    digest = hashlib.sha256(raw).hexdigest()[:48] + f":{delivery.id}"
    if delivery.channel == Channel.FAX.value:
        result_mail = _gateway_report(delivery, source, digest, gateway, reading.text, retry,
                                      now or datetime.now(UTC), draw)
        if result_mail is not None:
            return result_mail
    result = _result_for(reading, delivery.address)
    status = (result.status if result else None) or reading.kind.value
    detail = (result.detail if result else "") or f"{reading.kind.value} report"
    state: DeliveryState | None = None
    if reading.kind is MailKind.DELIVERED:
        state = DeliveryState.DELIVERED
    elif reading.kind is MailKind.BOUNCE and result is not None and result.hard:
        # the gateway's mail bounced: the fax never went out
        state = (DeliveryState.UNDELIVERED if delivery.channel == Channel.FAX.value
                 else DeliveryState.BOUNCED)
    return Report(delivery.id, source, status, result.status if result else None, detail,
                  digest, state)


def _result_for(reading: MailReading, address: str) -> RecipientResult | None:
    for result in reading.recipients:
        if result.address == address.lower():
            return result
    return reading.recipients[0] if reading.recipients else None


def _gateway_report(delivery: DeliveryRecord, source: str, digest: str,
                    gateway: FaxGatewayReceipts, text: str, retry: RetryPolicy | None,
                    now: datetime, draw: float) -> Report | None:
    """A fax gateway's result mail, recognised by the configured patterns; None if
    neither pattern matches (then it is read as any returned mail). A failure says what
    happened on the line (``fax_results``): busy or no answer is faxed again."""
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if gateway.failed_pattern is not None and gateway.failed_pattern.search(text):
        result = fax_result(text)
        if result.retried and retry is not None and retry.may_retry(delivery.attempts):
            # busy or no answer: faxed again after the [retry] backoff
            return Report(delivery.id, source, "fax-failed", result.code, first_line, digest,
                          DeliveryState.PENDING,
                          now + timedelta(seconds=retry.delay(delivery.attempts, draw)))
        return Report(delivery.id, source, "fax-failed", result.code, first_line, digest,
                      DeliveryState.UNDELIVERED)
    if gateway.delivered_pattern is not None and gateway.delivered_pattern.search(text):
        return Report(delivery.id, source, "fax-delivered", None, first_line, digest,
                      DeliveryState.DELIVERED)
    return None


async def read_mails(mails: Iterable[tuple[str, bytes]], matcher: MailMatcher, source: str
                     ) -> list[MailResult]:
    """Each mail read and matched; nothing is written."""
    read = [(name, raw, _read_or_log(name, raw)) for name, raw in mails]
    await matcher.prefetch(reading for _, _, reading in read)
    results = []
    for name, raw, reading in read:
        found, matched_by, forged = await matcher.match(reading)
        if forged:
            event(log, logging.WARNING, "returned mail with a forged bounce token ignored",
                  file=name)
        report = None
        if found is not None:
            report = report_of(reading, raw, found[0], source,
                               matcher.config.receipts.fax_gateway, matcher.config.retry,
                               datetime.now(UTC), random.random())
        results.append(MailResult(name, reading, found[0] if found else None, matched_by,
                                  report, _forged(reading, raw, source) if forged else None))
    return results


def _forged(reading: MailReading, raw: bytes, source: str) -> ForgedReport:
    recipients = ", ".join(f"{r.address} {r.status or '-'}" for r in reading.recipients[:3])
    return ForgedReport(source, reading.envid or reading.envelope_to,
                        f"{reading.kind.value}: {recipients or 'no recipient'}",
                        hashlib.sha256(raw).hexdigest())


def _read_or_log(name: str, raw: bytes) -> MailReading:
    """The mail's reading; one no parser can read is logged and read as not a bounce."""
    try:
        return read_bounce(raw)
    except Exception as exc:
        event(log, logging.WARNING, "unreadable mail left alone", mail=name,
              error=f"{type(exc).__name__}: {exc}")
        return MailReading(MailKind.NOT_A_BOUNCE, (), "", None, (), "")
