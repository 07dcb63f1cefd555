"""One notice end to end: plan its deliveries, claim them under a lease, render, send, record.

Every path that sends (the daemon's jobs, `send`, `retry`, a second daemon) goes through
here, and only claimed deliveries are sent, so no two paths send the same one at once.
Outcomes are written by group commit: a worker waits until its outcome is in the ledger
before it takes the next delivery, and the outcomes that arrive together share one
transaction. A crash therefore leaves at most one sent-but-unrecorded delivery per worker;
it is claimed again when its lease expires.

Transient failures are retried for as long as the notice matters (``RetryPolicy.deadline``);
then what is left expires. A provider that does not answer pauses its channel, which probes
it (``Breaker``); a ledger that does not answer is waited for (``Patience``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from dispatcher.clock import Clock, Sleep
from dispatcher.errors import (
    ChannelError,
    InputError,
    RefusedError,
    UnavailableError,
)
from dispatcher.ledger import (
    Claimed,
    DeliveryState,
    Ledger,
    NewDelivery,
    NoticeRecord,
    NoticeState,
    OutageRecord,
    Outcome,
)
from dispatcher.logs import event
from dispatcher.render import FaxDocument, Renderer
from dispatcher.send.breaker import Breaker, Outage
from dispatcher.send.channels import Backend, Outgoing
from dispatcher.send.claims import ChannelRun, Claims, Progress
from dispatcher.send.faxpress import FaxPress, pace_for
from dispatcher.send.identity import delivery_tag, worker_id
from dispatcher.send.lanes import GroupCommit, Lane, RateLimiter
from dispatcher.send.outcome import outcome_of_error
from dispatcher.send.patience import Patience
from dispatcher.table import (
    PROBE_CEILING_SECONDS,
    Channel,
    Contact,
    Deadline,
    Inputs,
    Notice,
    in_audience,
    spoken_duration,
)

log = logging.getLogger("dispatcher.dispatch")

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """A notice's deliveries as planned: who gets what, and who cannot be reached."""

    record: NoticeRecord
    created: bool
    added: int
    lacking: Mapping[Channel, tuple[str, ...]]


@dataclass
class Dispatcher(Claims):
    """Sends notices from one set of validated inputs through one ledger."""

    inputs: Inputs
    ledger: Ledger
    backends: Mapping[Channel, Backend]
    clock: Clock
    sleep: Sleep = asyncio.sleep
    draw: Callable[[], float] = random.random
    owner: str = field(default_factory=worker_id)
    on_progress: Progress | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # channels whose provider refused the sender (a wrong password), and why: they
        # stopped with their deliveries pending, until the operator fixes the setup
        self.stopped: dict[Channel, str] = {}
        config = self.inputs.config
        self._renderer = Renderer(config.settings.templates_dir, config)
        self._contacts = {c.id: c for c in self.inputs.contacts}
        self._fax_press = FaxPress(config.settings.templates_dir,
                                   pace_for(config.channels[Channel.FAX]))
        self.patience = Patience(config.retry, self.clock, self.sleep, self.draw)

    async def _ledger(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self.patience(call)

    def audience(self, notice: Notice) -> list[Contact]:
        return in_audience(self.inputs.contacts, notice.window.audience)

    async def plan(self, notice: Notice, channels: Iterable[Channel], triggered_by: str
                   ) -> Plan:
        """Record the notice and its deliveries (audience x channels with an address). A
        notice with something to send is ``sending``, or ``partial`` when ``channels`` are
        only some of its own (the daemon sends the rest at the notice's time)."""
        now = self.clock()
        channels = list(channels)
        record, created = await self._ledger(lambda: self.ledger.open_notice(
            notice.window.id, notice.slot.name, notice.tag, triggered_by, now))
        wanted: list[NewDelivery] = []
        lacking: dict[Channel, tuple[str, ...]] = {}
        for channel in channels:
            missing = []
            for contact in self.audience(notice):
                address = contact.address(channel)
                if address:
                    wanted.append(NewDelivery(contact.id, channel.value, address))
                else:
                    missing.append(contact.id)
            lacking[channel] = tuple(missing)
        added = await self._ledger(lambda: self.ledger.add_deliveries(record.id, wanted, now))
        state = (NoticeState.SENDING if set(notice.channels) <= set(channels)
                 else NoticeState.PARTIAL)
        if record.state != NoticeState.SENDING and (added or record.state != NoticeState.DONE):
            await self._ledger(lambda: self.ledger.reopen_notice(record.id, state, now))
            record = replace(record, state=state.value)
        return Plan(record, created, added, lacking)

    async def run(self, notice: Notice, record: NoticeRecord, channels: Iterable[Channel]
                  ) -> None:
        """Send until every delivery of these channels is final (or a stop is requested)."""
        committer = GroupCommit(self.ledger, self.owner, self.clock, self.patience)
        deadline = self.inputs.config.retry.deadline(notice, record.retrying_since)
        async with asyncio.TaskGroup() as group:
            for channel in channels:
                group.create_task(self._run_channel(notice, record, channel, deadline,
                                                    committer))
        await self.settle(notice, record)

    async def settle(self, notice: Notice, record: NoticeRecord) -> NoticeState | None:
        """Finish the notice if nothing of it is left to send: ``done`` when every contact of
        its audience has a final delivery on each of its channels, else ``partial``. None
        (it stays as it is) while some delivery is not final."""
        planned, unfinished = await self._ledger(lambda: self.ledger.planned(record.id))
        if unfinished:
            return None
        complete = all(contact.id in planned.get(channel.value, ())
                       for channel in notice.channels for contact in self.audience(notice)
                       if contact.address(channel))
        state = NoticeState.DONE if complete else NoticeState.PARTIAL
        if record.state != state.value or record.finished_at is None:
            await self._ledger(lambda: self.ledger.finish_notice(record.id, state,
                                                                 self.clock()))
        return state

    async def close(self) -> None:
        await self._fax_press.close()

    async def _run_channel(self, notice: Notice, record: NoticeRecord, channel: Channel,
                           deadline: Deadline, committer: GroupCommit) -> None:
        settings = self.inputs.config.channels[channel]
        backend = self.backends[channel]
        await backend.start()
        lane = Lane(settings, RateLimiter(settings.rate_per_second, self.clock, self.sleep),
                    self.inputs.config.settings.lease_seconds)
        run = ChannelRun(notice, record, lane,
                         Breaker(self.inputs.config.retry, self.clock, self.draw), backend,
                         deadline)
        workers = [asyncio.create_task(self._work(run, committer))
                   for _ in range(settings.concurrency)]
        renewer = asyncio.create_task(self._renew_leases(run))
        try:
            # A provider that confirms later may hand deliveries back for another attempt;
            # then they are claimed again.
            await self._claim_loop(run)
            while backend.confirms_later and await self._confirm_loop(run):
                await self._claim_loop(run)
        finally:
            unstarted = lane.take_unstarted() if self.stopping.is_set() else []
            for _ in workers:
                lane.queue.put_nowait(None)
            await asyncio.gather(*workers)
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await self._release(run, unstarted)

    async def _work(self, run: ChannelRun, committer: GroupCommit) -> None:
        while (item := await run.lane.queue.get()) is not None:
            try:
                outcome = await self._deliver(run, item)
                if outcome is not None:
                    await committer.record(replace(outcome, epoch=item.epoch))
            finally:
                run.lane.finished()
            if outcome is not None and self.on_progress is not None:
                self.on_progress(run.channel, outcome.state)

    async def _deliver(self, run: ChannelRun, item: Claimed) -> Outcome | None:
        """What became of one claimed delivery; None if its lease was lost before it could
        be handed to the provider (it is given back, not sent)."""
        contact = self._contacts.get(item.contact_id)
        if contact is None:
            return Outcome(item.id, DeliveryState.FAILED, error_code="contact-removed",
                           last_error="the contact is no longer in contacts/")
        if self.clock() >= run.deadline.at:
            return Outcome(item.id, DeliveryState.EXPIRED, error_code="expired",
                           last_error=run.deadline.reason, counted=False)
        if run.breaker.is_open and not run.breaker.probing:
            return Outcome(item.id, DeliveryState.PENDING, next_attempt_at=self.clock(),
                           last_error=run.breaker.error, counted=False)
        if run.refused is not None:  # the channel has stopped: not one more login
            return Outcome(item.id, DeliveryState.PENDING, next_attempt_at=self.clock(),
                           error_code=run.refused.code, last_error=str(run.refused),
                           counted=False)
        await run.lane.limiter.wait()
        sent_at = self.clock()
        try:
            outgoing = await self._outgoing(run, item, contact, sent_at)
        except InputError as exc:
            return Outcome(item.id, DeliveryState.FAILED, error_code="render",
                           last_error=str(exc))
        if not run.lane.holds(self.clock()):
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
        # A backend that confirms later (HylaFAX) is polled until its job ends.
        accepted = DeliveryState.SUBMITTED if run.backend.confirms_later else DeliveryState.SENT
        return Outcome(item.id, accepted, provider_ref=receipt.provider_ref, sent_at=sent_at)

    async def _outgoing(self, run: ChannelRun, item: Claimed, contact: Contact,
                        sent_at: datetime) -> Outgoing:
        notice, channel = run.notice, run.channel
        message = self._renderer.render(notice, contact, channel, sent_at)
        if message.address != item.address:  # the contact's address changed since planning
            message = replace(message, address=item.address)
        document = await self._fax_document(message.body) if channel is Channel.FAX else None
        # the same instant, in the zone the contact reads (an e-mail's Date: +0900)
        local = sent_at.astimezone(self.inputs.config.settings.timezone)
        return Outgoing(item.id, notice.key, message, local, item.attempts,
                        delivery_tag(run.record, item.id), document)

    async def _lost_lease(self, run: ChannelRun, item: Claimed) -> None:
        event(log, logging.WARNING, "lease lost before sending: given back, not sent",
              channel=run.channel.value, notice=run.notice.key, delivery=item.id)
        await self._release(run, [item])

    async def _after_error(self, run: ChannelRun, item: Claimed, exc: ChannelError,
                           sent_at: datetime) -> Outcome:
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
        return outcome_of_error(item, exc, self.inputs.config.retry, self.clock(), self.draw())

    async def _answered(self, run: ChannelRun, started_at: datetime) -> None:
        outage = run.breaker.answered(started_at)
        if outage is None:
            return
        counts = await self._ledger(lambda: self.ledger.counts(run.record.id))
        waiting = counts.get((run.channel.value, DeliveryState.PENDING.value), 0)
        self._log_reachable(run, outage, waiting)
        await self._ledger(lambda: self.ledger.record_outage(OutageRecord(
            run.record.id, run.channel.value, outage.began_at, outage.ended_at, waiting,
            outage.probes, outage.error)))

    def _log_unreachable(self, run: ChannelRun) -> None:
        breaker = run.breaker
        assert breaker.opened_at is not None
        since = breaker.opened_at.astimezone(self.inputs.config.settings.timezone)
        every = min(self.inputs.config.retry.max_delay_seconds, PROBE_CEILING_SECONDS)
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

    async def _fax_document(self, html: str) -> FaxDocument:
        return await self._fax_press.document(html)

    def _claim_batch(self, run: ChannelRun) -> int:
        # fax: the pages kept rendered ahead of the lines (see pace_for)
        batch = super()._claim_batch(run)
        return max(batch, self._fax_press.pages_ahead) if run.channel is Channel.FAX else batch

    def _claimed(self, run: ChannelRun, items: list[Claimed]) -> None:
        """Fax pages are rendered ahead, a claimed batch at a time (see FaxPress)."""
        if run.channel is not Channel.FAX:
            return
        now = self.clock()
        pages = []
        for item in items:
            contact = self._contacts.get(item.contact_id)
            if contact is not None:
                try:
                    pages.append(self._renderer.render(run.notice, contact, Channel.FAX,
                                                       now).body)
                except InputError:  # reported when the delivery itself is rendered
                    continue
        self._fax_press.prepare(pages)
