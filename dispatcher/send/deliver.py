"""One claimed delivery handed to its provider, and what became of it.

A delivery whose notice stopped mattering expires, as does an escalation's to a contact
who confirmed meanwhile; one whose channel is paused (the
provider does not answer) or stopped (it refused our login) goes back to pending without
counting an attempt; one whose lease was lost before the hand-over is given back, not sent.
The provider's answers open and close the channel's breaker, and each outage is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from dispatcher.errors import ChannelError, InputError, RefusedError, UnavailableError
from dispatcher.ledger import Claimed, DeliveryState, OutageRecord, Outcome
from dispatcher.logs import event
from dispatcher.render import Renderer
from dispatcher.send.breaker import Outage
from dispatcher.send.channels import Outgoing
from dispatcher.send.claims import ChannelRun, Claims
from dispatcher.send.context import SendingContext
from dispatcher.send.identity import delivery_tag
from dispatcher.send.lanes import GroupCommit
from dispatcher.send.outcome import outcome_of_error
from dispatcher.table import PROBE_CEILING_SECONDS, Channel, Contact, spoken_duration

log = logging.getLogger("dispatcher.dispatch")


class Deliverer:
    """A channel run's workers: each takes claimed deliveries from the lane until told to
    stop, sends them, and records their outcomes through the group commit."""

    def __init__(self, context: SendingContext, claims: Claims, renderer: Renderer,
                 contacts: Mapping[str, Contact], timezone: ZoneInfo) -> None:
        self._context = context
        self._claims = claims
        self._renderer = renderer
        self._contacts = contacts
        self._timezone = timezone
        # channels whose provider refused the sender (a wrong password), and why: they
        # stopped with their deliveries pending, until the operator fixes the setup
        self.stopped: dict[Channel, str] = {}

    async def work(self, run: ChannelRun, committer: GroupCommit) -> None:
        while (item := await run.lane.queue.get()) is not None:
            try:
                outcome = await self._deliver(run, item)
                if outcome is not None:
                    await committer.record(replace(outcome, epoch=item.epoch))
            finally:
                run.lane.finished()
            if outcome is not None:
                self._context.progressed(run.channel, outcome.state)

    async def _deliver(self, run: ChannelRun, item: Claimed) -> Outcome | None:
        """What became of one claimed delivery; None if its lease was lost before it could
        be handed to the provider (it is given back, not sent)."""
        clock = self._context.clock
        contact = self._contacts.get(item.contact_id)
        if contact is None:
            return Outcome(item.id, DeliveryState.FAILED, error_code="contact-removed",
                           last_error="the contact is no longer in contacts/")
        if await self._moot(run):
            return Outcome(item.id, DeliveryState.EXPIRED, error_code="expired",
                           last_error=run.deadline.reason, counted=False)
        if run.escalating is not None and await self._confirmed(run.escalating, item):
            return Outcome(item.id, DeliveryState.EXPIRED, error_code="confirmed",
                           last_error="the contact confirmed the notice meanwhile",
                           counted=False)
        if run.breaker.is_open and not run.breaker.probing:
            return Outcome(item.id, DeliveryState.PENDING, next_attempt_at=clock(),
                           last_error=run.breaker.error, counted=False)
        if run.refused is not None:  # the channel has stopped: not one more login
            return Outcome(item.id, DeliveryState.PENDING, next_attempt_at=clock(),
                           error_code=run.refused.code, last_error=str(run.refused),
                           counted=False)
        await run.lane.limiter.wait()
        if await self._moot(run):  # it stopped mattering while waiting for its turn
            return Outcome(item.id, DeliveryState.EXPIRED, error_code="expired",
                           last_error=run.deadline.reason, counted=False)
        sent_at = clock()
        try:
            outgoing = await self._outgoing(run, item, contact, sent_at)
        except InputError as exc:
            return Outcome(item.id, DeliveryState.FAILED, error_code="render",
                           last_error=str(exc))
        if not run.lane.holds(clock()):
            await self._lost_lease(run, item)
            return None
        try:
            receipt = await run.backend.send(outgoing)
        except ChannelError as exc:
            return await self._after_error(run, item, exc, sent_at)
        except Exception as exc:
            # A backend's own bug must not stop the broadcast (a dead worker would leave its
            # claims waiting forever); the message may have gone out, so: uncertain.
            log.exception("delivery %s to %s: unexpected error in the %s backend", item.id,
                          item.address, run.backend.name)
            return Outcome(item.id, DeliveryState.UNCERTAIN, error_code="internal",
                           last_error=f"{type(exc).__name__}: {exc}")
        await self._answered(run, sent_at)
        return Outcome(item.id, run.strategy.handed_over, provider_ref=receipt.provider_ref,
                       sent_at=sent_at)

    async def _moot(self, run: ChannelRun) -> bool:
        """Whether the notice has stopped mattering (its deadline read as the night has
        it now: `done`, a postponement)."""
        await self._claims.look_at_the_deadline(run)
        return self._context.clock() >= run.deadline.at

    async def _confirmed(self, notice_id: int, item: Claimed) -> bool:
        c = self._context
        return bool(await c.ask(lambda: c.ledger.confirmations_of(notice_id,
                                                                  [item.contact_id])))

    async def _outgoing(self, run: ChannelRun, item: Claimed, contact: Contact,
                        sent_at: datetime) -> Outgoing:
        notice = run.notice
        stamp = run.strategy.stamped(item) or sent_at
        message = self._renderer.render(notice, contact, run.channel, stamp, item.id)
        if message.address != item.address:  # the contact's address changed since planning
            message = replace(message, address=item.address)
        document = await run.strategy.document(message)
        # the same instant, in the zone the contact reads (an e-mail's Date: +0900)
        local = sent_at.astimezone(self._timezone)
        return Outgoing(item.id, notice.key, message, local, item.attempts,
                        delivery_tag(run.record, item.id), document)

    async def _lost_lease(self, run: ChannelRun, item: Claimed) -> None:
        event(log, logging.WARNING, "lease lost before sending: given back, not sent",
              channel=run.channel.value, notice=run.notice.key, delivery=item.id)
        await self._claims.release(run, [item])

    async def _after_error(self, run: ChannelRun, item: Claimed, exc: ChannelError,
                           sent_at: datetime) -> Outcome:
        c = self._context
        if isinstance(exc, UnavailableError):
            if run.breaker.unanswered(sent_at, str(exc)):
                self._log_unreachable(run)
        elif isinstance(exc, RefusedError):
            if run.refused is None:
                run.refused, self.stopped[run.channel] = exc, str(exc)
                event(log, logging.ERROR,
                      f"{run.channel.value}: stopped, the provider refused our login; its "
                      "deliveries stay pending until the setup is fixed",
                      channel=run.channel.value, notice=run.notice.key, error=str(exc))
        else:
            await self._answered(run, sent_at)
            log.warning("delivery %s to %s failed (attempt %s): %s", item.id, item.address,
                        item.attempts, exc)
        return outcome_of_error(item, exc, c.retry, c.clock(), c.draw())

    async def _answered(self, run: ChannelRun, started_at: datetime) -> None:
        outage = run.breaker.answered(started_at)
        if outage is None:
            return
        c = self._context
        counts = await c.ask(lambda: c.ledger.counts(run.record.id))
        waiting = counts.get((run.channel.value, DeliveryState.PENDING.value), 0)
        self._log_reachable(run, outage, waiting)
        await c.ask(lambda: c.ledger.record_outage(OutageRecord(
            run.record.id, run.channel.value, outage.began_at, outage.ended_at, waiting,
            outage.probes, outage.error)))

    def _log_unreachable(self, run: ChannelRun) -> None:
        breaker = run.breaker
        assert breaker.opened_at is not None
        since = breaker.opened_at.astimezone(self._timezone)
        every = min(self._context.retry.max_delay_seconds, PROBE_CEILING_SECONDS)
        event(log, logging.WARNING,
              f"{run.channel.value}: provider unreachable since {since:%H:%M:%S}, "
              f"probing every {every:g} s", channel=run.channel.value, notice=run.notice.key,
              error=breaker.error)

    def _log_reachable(self, run: ChannelRun, outage: Outage, waiting: int) -> None:
        # a warning, like the outage's start: `send` shows warnings, and both ends matter
        event(log, logging.WARNING,
              f"{run.channel.value}: reachable again after {spoken_duration(outage.seconds)}; "
              f"{waiting:,} deliveries waiting", channel=run.channel.value,
              notice=run.notice.key, probes=outage.probes)
