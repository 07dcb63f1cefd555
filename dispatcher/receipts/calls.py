"""What comes back from a voice call, each request signed by Twilio and its URL's token
signed by us (``twilio.signed_delivery``): the TwiML the call asks for when answered (said
to a person, or once to an answering machine: ``AnsweredBy``), the key pressed (1
confirms the notice), and how the call ended.

``completed`` settles the delivery as delivered (someone or a machine heard it); ``busy``
and ``no-answer`` ask for another call after the [retry] backoff while attempts remain (the
send path expires it once the notice stops mattering); ``failed`` and ``canceled`` are
undelivered.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.clock import Clock
from dispatcher.errors import InputError
from dispatcher.ledger import (
    Applied,
    Confirmation,
    DeliveryRecord,
    DeliveryState,
    Ledger,
    NoticeRecord,
    Report,
)
from dispatcher.logs import event
from dispatcher.receipts.twilio import signed_delivery
from dispatcher.render import (
    Renderer,
    Script,
    after_key_twiml,
    call_twiml,
    hang_up_twiml,
)
from dispatcher.send import GATHER_PATH, CallUrls, DeliveryTokens, as_moved
from dispatcher.table import Channel, Inputs, RetryPolicy, notice_named

log = logging.getLogger("dispatcher.receipts")

RETRIED = frozenset({"busy", "no-answer"})
UNDELIVERED = frozenset({"failed", "canceled"})
CONFIRM_KEY = "1"
EARLY_POLL_SECONDS = 0.2
EARLY_WAIT_SECONDS = 10.0  # Twilio waits 15 s for a callback's answer


def call_report(delivery: DeliveryRecord, params: Mapping[str, str], source: str,
                retry: RetryPolicy, now: datetime, draw: float) -> Report:
    """The ledger report for a call's status callback. Pure."""
    status = params.get("CallStatus", "").lower()
    sid = params.get("CallSid", "")
    answered_by = params.get("AnsweredBy", "")
    detail = " ".join(p for p in (status, f"answered by {answered_by}" if answered_by else "",
                                  f"({params['CallDuration']} s)" if params.get("CallDuration")
                                  else "") if p)
    digest = hashlib.sha256(f"call|{delivery.id}|{sid}|{status}".encode()).hexdigest()
    state: DeliveryState | None = None
    retry_at = None
    if delivery.provider_ref and sid and sid != delivery.provider_ref:
        return Report(delivery.id, source, status, None,
                      f"{detail} (call {sid}, not the current {delivery.provider_ref})", digest)
    if status == "completed":
        state = DeliveryState.DELIVERED
    elif status in RETRIED and retry.may_retry(delivery.attempts):
        state = DeliveryState.PENDING
        retry_at = now + timedelta(seconds=retry.delay(delivery.attempts, draw))
    elif status in RETRIED or status in UNDELIVERED:
        state = DeliveryState.UNDELIVERED
    return Report(delivery.id, source, status, None, detail, digest, state, retry_at)


@dataclass
class CallReports:
    ledger: Ledger
    retry: RetryPolicy
    auth_token: str
    tokens: DeliveryTokens
    urls: CallUrls
    clock: Clock
    inputs: Callable[[], Awaitable[Inputs]]  # the table in force: what the call says
    draw: Callable[[], float] = random.random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def twiml(self, url: str, params: Mapping[str, str], signature: str, token: str
                    ) -> str | None:
        """The call's TwiML; None if the request is not Twilio's about one of our calls."""
        found = await self._verified(url, params, signature, token)
        if found is None:
            return None
        delivery, record = found
        inputs = await self.inputs()
        script = await self._script(inputs, delivery, record)
        if script is None:
            return hang_up_twiml()
        machine = params.get("AnsweredBy", "").startswith("machine")
        event(log, logging.INFO, "call answered", delivery=delivery.id,
              answered_by=params.get("AnsweredBy", "unknown"))
        return call_twiml(script, inputs.config.messages.voice,
                          self.urls.url(GATHER_PATH, delivery.id), machine)

    async def gather(self, url: str, params: Mapping[str, str], signature: str, token: str
                     ) -> str | None:
        """What the call says after a key; 1 confirms the notice for the contact."""
        found = await self._verified(url, params, signature, token)
        if found is None:
            return None
        delivery, record = found
        confirmed = params.get("Digits", "").strip() == CONFIRM_KEY
        if confirmed:  # the notice itself, if the call is its call-out
            base = await self.ledger.base_of(record)
            await self.ledger.confirm(Confirmation(
                base.id, delivery.contact_id, "voice", f"call {params.get('CallSid', '')}",
                self.clock(), delivery.id))
            event(log, logging.INFO, "confirmed by call", delivery=delivery.id,
                  contact=delivery.contact_id)
        inputs = await self.inputs()
        script = await self._script(inputs, delivery, record)
        if script is None:
            return hang_up_twiml()
        return after_key_twiml(script, inputs.config.messages.voice, confirmed)

    async def status(self, url: str, params: Mapping[str, str], signature: str, token: str
                     ) -> Applied | None:
        found = await self._verified(url, params, signature, token)
        if found is None:
            return None
        delivery = await self._placed(found[0])
        now = self.clock()
        report = call_report(delivery, params, "twilio-call", self.retry, now, self.draw())
        [applied] = await self.ledger.apply_reports([report], now)
        if applied is Applied.MOVED and report.state is not DeliveryState.DELIVERED:
            event(log, logging.WARNING, "call not completed", delivery=delivery.id,
                  to=delivery.address, status=report.status,
                  retry=report.state is DeliveryState.PENDING)
        return applied

    async def _placed(self, delivery: DeliveryRecord) -> DeliveryRecord:
        """The delivery once the sender has recorded the call as placed (its CallSid): a
        busy line answers within a second, maybe before that record. Twilio waits for
        this answer, so the report waits for the record (at most ``EARLY_WAIT_SECONDS``)."""
        waited = 0.0
        while delivery.state == DeliveryState.SENDING.value and waited < EARLY_WAIT_SECONDS:
            await self.sleep(EARLY_POLL_SECONDS)
            waited += EARLY_POLL_SECONDS
            found = (await self.ledger.deliveries_by_id([delivery.id])).get(delivery.id)
            delivery = found[0] if found else delivery
        return delivery

    async def _verified(self, url: str, params: Mapping[str, str], signature: str,
                        token: str) -> tuple[DeliveryRecord, NoticeRecord] | None:
        said = f"{params.get('CallSid', '')} {params.get('CallStatus', '')}"
        delivery_id = await signed_delivery(self.ledger, self.auth_token, self.tokens,
                                            self.clock(), url, params, signature, token, said)
        if delivery_id is None:
            return None
        return (await self.ledger.deliveries_by_id([delivery_id])).get(delivery_id)

    async def _script(self, inputs: Inputs, delivery: DeliveryRecord, record: NoticeRecord
                      ) -> Script | None:
        notice = notice_named(inputs.config.windows, record.window_id, record.slot,
                              record.phase, await self.ledger.work_reports())
        if notice is not None:  # a postponement: interrupted or not, as it was made
            notice = await as_moved(self.ledger, notice)
        contact = next((c for c in inputs.contacts if c.id == delivery.contact_id), None)
        if notice is None or contact is None:
            return None
        try:
            message = Renderer.of(inputs).render(
                notice, contact, Channel.VOICE, delivery.sent_at or record.created_at,
                delivery.id)
        except InputError:
            return None
        return message.script
