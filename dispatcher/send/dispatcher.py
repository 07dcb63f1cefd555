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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

from dispatcher.errors import (
    ChannelError,
    InputError,
    TransientError,
    UnavailableError,
)
from dispatcher.ledger import (
    FINAL_STATES,
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
from dispatcher.render import FaxDocument, FaxPages, Renderer
from dispatcher.send.breaker import Breaker, Outage
from dispatcher.send.channels import Backend, Outgoing
from dispatcher.send.identity import delivery_tag, message_id, worker_id
from dispatcher.send.lanes import Clock, GroupCommit, Lane, RateLimiter, Sleep
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

Progress = Callable[[Channel, DeliveryState], None]
IDLE_POLL_SECONDS = 1.0
CLAIM_BATCH = 64
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """A notice's deliveries as planned: who gets what, and who cannot be reached."""

    record: NoticeRecord
    created: bool
    added: int
    lacking: Mapping[Channel, tuple[str, ...]]


@dataclass
class ChannelRun:
    """One channel of one notice being sent: its lane, its breaker, its backend, and the
    time the notice stops mattering."""

    notice: Notice
    record: NoticeRecord
    lane: Lane
    breaker: Breaker
    backend: Backend
    deadline: Deadline

    @property
    def channel(self) -> Channel:
        return self.lane.settings.channel


@dataclass
class Dispatcher:
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
        config = self.inputs.config
        self._renderer = Renderer(config.settings.templates_dir, config)
        self._contacts = {c.id: c for c in self.inputs.contacts}
        self._fax_pages = FaxPages(config.settings.templates_dir)
        self._fax_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fax-page")
        self.patience = Patience(config.retry, self.clock, self.sleep, self.draw)

    async def _ledger(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self.patience(call)

    def audience(self, notice: Notice) -> list[Contact]:
        return in_audience(self.inputs.contacts, notice.window.audience)

    async def plan(self, notice: Notice, channels: Iterable[Channel], triggered_by: str
                   ) -> Plan:
        """Record the notice and its deliveries (audience x channels with an address)."""
        now = self.clock()
        record, created = await self._ledger(lambda: self.ledger.open_notice(
            notice.window.id, notice.slot.name, notice.phase.value, triggered_by, now))
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
        if self.stopping.is_set():
            return
        counts = await self._ledger(lambda: self.ledger.counts(record.id))
        if all(DeliveryState(state) in FINAL_STATES for (_, state) in counts):
            await self._ledger(lambda: self.ledger.finish_notice(record.id, NoticeState.DONE,
                                                                 self.clock()))

    async def close(self) -> None:
        self._fax_thread.shutdown(wait=True)

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
            await self._release(run, unstarted)

    async def _claim_loop(self, run: ChannelRun) -> None:
        lane, breaker = run.lane, run.breaker
        while not self.stopping.is_set():
            if self.clock() >= run.deadline.at:
                await self._expire_unsent(run)
            elif breaker.is_open:
                if not breaker.probing:  # what was claimed before it opened goes back
                    await self._release(run, lane.take_unstarted())
                if breaker.probe_due() and not lane.in_flight and await self._claim(run, 1):
                    breaker.start_probe()
                    continue
            elif await self._refill(run):
                continue
            if lane.in_flight:
                await lane.wait_for_a_finish(IDLE_POLL_SECONDS)
                continue
            wake = await self._ledger(lambda: self.ledger.next_wakeup(run.record.id,
                                                                      run.channel.value))
            if wake is None:
                return
            await self.sleep(self._pause(run, wake))

    async def _refill(self, run: ChannelRun) -> int:
        # Claims are refilled in batches once the queue is half empty: one query per batch.
        batch = max(4 * run.lane.settings.concurrency, CLAIM_BATCH)
        room = batch - run.lane.queue.qsize()
        return await self._claim(run, room) if room >= batch // 2 else 0

    async def _claim(self, run: ChannelRun, limit: int) -> int:
        now = self.clock()
        lease_until = now + run.lane.lease(limit)
        claimed = await self._ledger(lambda: self.ledger.claim(
            run.record.id, run.channel.value, self.owner, now, lease_until, limit))
        for item in claimed:
            run.lane.in_flight += 1
            run.lane.queue.put_nowait(item)
        return len(claimed)

    def _pause(self, run: ChannelRun, wake: datetime) -> float:
        """Seconds to sleep before looking again: until the next delivery is due (or the next
        probe, while the provider is away), never past the deadline, at most a second."""
        if run.breaker.next_probe_at is not None:
            wake = max(wake, run.breaker.next_probe_at)
        seconds = (min(wake, run.deadline.at) - self.clock()).total_seconds()
        return min(max(seconds, 0.02), IDLE_POLL_SECONDS)

    async def _release(self, run: ChannelRun, unstarted: list[Claimed]) -> None:
        if unstarted:
            ids = [c.id for c in unstarted]
            await self._ledger(lambda: self.ledger.release(self.owner, ids, self.clock()))

    async def _expire_unsent(self, run: ChannelRun) -> None:
        await self._release(run, run.lane.take_unstarted())
        expired = await self._ledger(lambda: self.ledger.expire(
            run.record.id, run.channel.value, run.deadline.reason, self.clock()))
        if expired:
            event(log, logging.WARNING, "deliveries expired", notice=run.notice.key,
                  channel=run.channel.value, count=expired, reason=run.deadline.reason)
            if self.on_progress is not None:
                for _ in range(expired):
                    self.on_progress(run.channel, DeliveryState.EXPIRED)

    async def _confirm_loop(self, run: ChannelRun) -> bool:
        """Ask the provider about submitted deliveries until each has ended; True as soon
        as some are due for another attempt."""
        channel, record = run.channel, run.record
        poll_seconds = self.inputs.config.channels[channel].poll_seconds
        while not self.stopping.is_set():
            submitted = await self._ledger(lambda: self.ledger.submitted(record.id,
                                                                         channel.value))
            if not submitted:
                return False
            by_ref = {ref: item for item, ref in submitted}
            try:
                ended = await run.backend.poll(list(by_ref))
            except TransientError as exc:
                log.warning("%s; asking again in %s s", exc, poll_seconds)
                ended = {}
            outcomes = [Outcome(by_ref[ref].id, DeliveryState.DELIVERED) if error is None
                        else self._after_poll_error(by_ref[ref], error)
                        for ref, error in ended.items()]
            await self._ledger(partial(self.ledger.settle, outcomes, self.clock()))
            for outcome in outcomes:
                if self.on_progress is not None:
                    self.on_progress(channel, outcome.state)
            if any(outcome.state is DeliveryState.PENDING for outcome in outcomes):
                return True
            if len(outcomes) < len(submitted):
                await self.sleep(poll_seconds)
        return False

    async def _work(self, run: ChannelRun, committer: GroupCommit) -> None:
        while (item := await run.lane.queue.get()) is not None:
            try:
                outcome = await self._deliver(run, item)
                await committer.record(outcome)
            finally:
                run.lane.finished()
            if self.on_progress is not None:
                self.on_progress(run.channel, outcome.state)

    async def _deliver(self, run: ChannelRun, item: Claimed) -> Outcome:
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
        await run.lane.limiter.wait()
        sent_at = self.clock()
        try:
            outgoing = await self._outgoing(run, item, contact, sent_at)
        except InputError as exc:
            return Outcome(item.id, DeliveryState.FAILED, error_code="render",
                           last_error=str(exc))
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
        key = notice.key
        from_mailbox = self.inputs.config.channels[Channel.EMAIL].from_address
        return Outgoing(item.id, key, message, message_id(key, contact.id, channel, from_mailbox),
                        sent_at, item.attempts, delivery_tag(run.record, item.id), document)

    async def _after_error(self, run: ChannelRun, item: Claimed, exc: ChannelError,
                           sent_at: datetime) -> Outcome:
        if isinstance(exc, UnavailableError):
            if run.breaker.unanswered(sent_at, str(exc)):
                self._log_unreachable(run)
        else:
            await self._answered(run, sent_at)
            log.warning("delivery %s to %s failed (attempt %s): %s", item.id, item.address,
                        item.attempts, exc)
        return outcome_of_error(item, exc, self.inputs.config.retry, self.clock(), self.draw())

    def _after_poll_error(self, item: Claimed, exc: ChannelError) -> Outcome:
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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._fax_thread, self._fax_pages.render, html)
