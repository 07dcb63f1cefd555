"""What Twilio reports about each SMS after taking it: by status callback (signed by
Twilio, checked here) and by polling the messages still without a final status.

``delivered`` (or ``read``) settles a delivery as delivered. ``undelivered`` or ``failed``
settles it as undelivered, unless the error code is one of ``[receipts.sms]
retried_codes``: then a new message is sent after the [retry] backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from twilio.request_validator import RequestValidator

from dispatcher.clock import Clock
from dispatcher.errors import PermanentError, UnavailableError
from dispatcher.ledger import (
    Applied,
    DeliveryRecord,
    DeliveryState,
    ForgedReport,
    Ledger,
    Report,
)
from dispatcher.logs import event
from dispatcher.send import DeliveryTokens, MessageStatus, RateLimiter, TwilioSms
from dispatcher.table import Channel, RetryPolicy, SmsReceipts

log = logging.getLogger("dispatcher.receipts")

_DELIVERED = frozenset({"delivered", "read"})
_NOT_DELIVERED = frozenset({"undelivered", "failed", "canceled"})
POLL_BATCH = 200
POLL_EVERY_SECONDS = 30.0
POLL_HORIZON = timedelta(days=3)  # older messages are not asked about any more


def sms_report(delivery: DeliveryRecord, status: MessageStatus, source: str,
               settings: SmsReceipts, retry: RetryPolicy, now: datetime, draw: float
               ) -> Report:
    """The ledger report for one Twilio status of ``delivery``. Pure."""
    name = status.status.lower()
    digest = hashlib.sha256(
        f"twilio|{delivery.id}|{status.sid}|{name}|{status.error_code}".encode()).hexdigest()
    detail = name if status.error_code is None else \
        f"{name} {status.error_code}: {status.error_message or _meaning(status.error_code)}"
    state: DeliveryState | None = None
    retry_at = None
    if delivery.provider_ref and status.sid and status.sid != delivery.provider_ref:
        # about an earlier attempt's message: kept in the history, moves nothing
        return Report(delivery.id, source, name, status.error_code,
                      f"{detail} (message {status.sid}, not the current "
                      f"{delivery.provider_ref})", digest, None)
    if name in _DELIVERED:
        state = DeliveryState.DELIVERED
    elif name in _NOT_DELIVERED:
        state = DeliveryState.UNDELIVERED
        if status.error_code in settings.retried_codes and retry.may_retry(delivery.attempts):
            state = DeliveryState.PENDING
            retry_at = now + timedelta(seconds=retry.delay(delivery.attempts, draw))
    return Report(delivery.id, source, name, status.error_code, detail, digest, state,
                  retry_at)


_MEANINGS = {"30003": "unreachable destination handset", "30005": "unknown destination handset",
             "30006": "landline or unreachable carrier", "30007": "message filtered",
             "30008": "unknown error", "21610": "the recipient unsubscribed (STOP)"}


def _meaning(code: str) -> str:
    return _MEANINGS.get(code, "see Twilio's error dictionary")


async def signed_delivery(ledger: Ledger, auth_token: str, tokens: DeliveryTokens,
                          now: datetime, url: str, params: Mapping[str, str], signature: str,
                          token: str, said: str) -> int | None:
    """The delivery a Twilio callback is about: None if Twilio did not sign it, or if its
    URL's token (``{delivery id}-{signature}``) does not verify (kept as forged). ``said``
    is what it reports, for the log and the record."""
    if not RequestValidator(auth_token).validate(url, dict(params), signature):
        event(log, logging.WARNING, "twilio callback with a bad signature refused", url=url,
              said=said)
        return None
    delivery_id = tokens.callback_id(token)
    if delivery_id is None:
        event(log, logging.WARNING, "twilio callback with a forged token refused", url=url,
              said=said)
        digest = hashlib.sha256(f"{url}|{said}".encode()).hexdigest()
        await ledger.record_forged([ForgedReport("twilio-callback", url, said, digest)], now)
    return delivery_id


@dataclass
class TwilioReports:
    """Turns Twilio's statuses into ledger reports: from callbacks and from polling."""

    ledger: Ledger
    settings: SmsReceipts
    retry: RetryPolicy
    auth_token: str
    tokens: DeliveryTokens
    clock: Clock
    draw: Callable[[], float] = random.random

    async def callback(self, url: str, params: Mapping[str, str], signature: str,
                       token: str) -> Applied | None:
        """A status callback as received; None if Twilio did not sign it, or if its URL's
        token (``{delivery id}-{signature}``) does not verify: then nothing changes."""
        said = f"{params.get('MessageSid', '')} {params.get('MessageStatus', '')}"
        delivery_id = await signed_delivery(self.ledger, self.auth_token, self.tokens,
                                            self.clock(), url, params, signature, token, said)
        if delivery_id is None:
            return None
        found = await self.ledger.deliveries_by_id([delivery_id])
        if delivery_id not in found:
            return Applied.UNKNOWN
        delivery, _ = found[delivery_id]
        status = MessageStatus(params.get("MessageSid", ""), params.get("MessageStatus", ""),
                               params.get("ErrorCode") or None, None)
        return await self.apply(delivery, status, "twilio-callback")

    async def apply(self, delivery: DeliveryRecord, status: MessageStatus, source: str
                     ) -> Applied:
        now = self.clock()
        report = sms_report(delivery, status, source, self.settings, self.retry, now,
                            self.draw())
        [applied] = await self.ledger.apply_reports([report], now)
        if applied is Applied.MOVED and report.state is not DeliveryState.DELIVERED:
            event(log, logging.WARNING, "sms not delivered", delivery=delivery.id,
                  to=delivery.address, status=report.status, code=report.code,
                  retry=report.state is DeliveryState.PENDING)
        return applied


@dataclass
class TwilioPoller:
    """Asks Twilio about messages sent ``poll_after_minutes`` ago that no report settled,
    at most ``poll_per_second``; pauses when Twilio answers 429."""

    reports: TwilioReports
    backend: TwilioSms
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _limiter: RateLimiter | None = field(default=None, init=False)

    async def poll_once(self) -> int:
        """One round; returns how many messages were asked about. UnavailableError when
        Twilio cannot answer now."""
        reports, now = self.reports, self.reports.clock()
        due = await reports.ledger.awaiting_report(
            Channel.SMS.value, now - timedelta(minutes=reports.settings.poll_after_minutes),
            now - POLL_HORIZON, POLL_BATCH)
        asked = []
        try:
            for delivery in due:
                await self._rate().wait()
                assert delivery.provider_ref is not None
                try:
                    status = await self.backend.fetch(delivery.provider_ref)
                except PermanentError as exc:  # Twilio does not know it: stop asking
                    status = MessageStatus(delivery.provider_ref, "unknown", exc.code, str(exc))
                asked.append(delivery.id)
                await reports.apply(delivery, status, "twilio-poll")
        finally:
            await reports.ledger.mark_asked(asked, reports.clock())
        return len(asked)

    async def run(self, stopping: asyncio.Event) -> None:
        failures = 0
        while not stopping.is_set():
            wait = POLL_EVERY_SECONDS
            try:
                await self.poll_once()
                failures = 0
            except UnavailableError as exc:
                failures += 1
                wait = max(wait, self.reports.retry.probe_delay(failures, self.reports.draw()))
                event(log, logging.WARNING, "twilio status poll paused", error=str(exc),
                      retry_in_seconds=round(wait, 1))
            except Exception as exc:  # the ledger away, say: try again next round
                event(log, logging.WARNING, "twilio status poll failed",
                      error=f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(stopping.wait(), wait)
            except TimeoutError:
                continue

    def _rate(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = RateLimiter(self.reports.settings.poll_per_second,
                                        self.reports.clock, self.sleep)
        return self._limiter
