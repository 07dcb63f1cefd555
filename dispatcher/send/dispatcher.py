"""One notice end to end: plan its deliveries, claim them under a lease, render, send, record.

Every path that sends (the daemon's jobs, `send`, `retry`, a second daemon) goes through
here, and only claimed deliveries are sent, so no two paths send the same one at once.
Outcomes are written by group commit: a worker waits until its outcome is in the ledger
before it takes the next delivery, and the outcomes that arrive together share one
transaction. A crash therefore leaves at most one sent-but-unrecorded delivery per worker;
it is claimed again when its lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from dispatcher.errors import (
    ChannelError,
    InputError,
    TransientError,
)
from dispatcher.ledger import (
    FINAL_STATES,
    Claimed,
    DeliveryState,
    Ledger,
    NewDelivery,
    NoticeRecord,
    NoticeState,
    Outcome,
)
from dispatcher.render import FaxDocument, FaxPages, Renderer
from dispatcher.send.channels import Backend, Outgoing
from dispatcher.send.identity import delivery_tag, message_id, worker_id
from dispatcher.send.lanes import Clock, GroupCommit, Lane, RateLimiter, Sleep
from dispatcher.send.outcome import outcome_of_error
from dispatcher.table import (
    Channel,
    Contact,
    Inputs,
    Notice,
    in_audience,
)

log = logging.getLogger("dispatcher.dispatch")

Progress = Callable[[Channel, DeliveryState], None]
IDLE_POLL_SECONDS = 1.0
CLAIM_BATCH = 64


@dataclass(frozen=True)
class Plan:
    """A notice's deliveries as planned: who gets what, and who cannot be reached."""

    record: NoticeRecord
    created: bool
    added: int
    lacking: Mapping[Channel, tuple[str, ...]]


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

    def audience(self, notice: Notice) -> list[Contact]:
        return in_audience(self.inputs.contacts, notice.window.audience)

    async def plan(self, notice: Notice, channels: Iterable[Channel], triggered_by: str
                   ) -> Plan:
        """Record the notice and its deliveries (audience x channels with an address)."""
        now = self.clock()
        record, created = await self.ledger.open_notice(
            notice.window.id, notice.slot.name, notice.phase.value, triggered_by, now)
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
        added = await self.ledger.add_deliveries(record.id, wanted, now)
        return Plan(record, created, added, lacking)

    async def run(self, notice: Notice, record: NoticeRecord, channels: Iterable[Channel]
                  ) -> None:
        """Send until every delivery of these channels is final (or a stop is requested)."""
        committer = GroupCommit(self.ledger, self.owner, self.clock)
        async with asyncio.TaskGroup() as group:
            for channel in channels:
                group.create_task(self._run_channel(notice, record, channel, committer))
        if self.stopping.is_set():
            return
        counts = await self.ledger.counts(record.id)
        if all(DeliveryState(state) in FINAL_STATES for (_, state) in counts):
            await self.ledger.finish_notice(record.id, NoticeState.DONE, self.clock())

    async def close(self) -> None:
        self._fax_thread.shutdown(wait=True)

    async def _run_channel(self, notice: Notice, record: NoticeRecord, channel: Channel,
                           committer: GroupCommit) -> None:
        settings = self.inputs.config.channels[channel]
        backend = self.backends[channel]
        await backend.start()
        lane = Lane(settings, RateLimiter(settings.rate_per_second, self.clock, self.sleep),
                     self.inputs.config.settings.lease_seconds)
        workers = [asyncio.create_task(self._work(notice, record, lane, backend, committer))
                   for _ in range(settings.concurrency)]
        try:
            # A provider that confirms later may hand deliveries back for another attempt;
            # then they are claimed again.
            await self._claim_loop(record, channel, lane)
            while backend.confirms_later and await self._confirm_loop(record, channel, backend):
                await self._claim_loop(record, channel, lane)
        finally:
            unstarted = lane.take_unstarted() if self.stopping.is_set() else []
            for _ in workers:
                lane.queue.put_nowait(None)
            await asyncio.gather(*workers)
            await self.ledger.release(self.owner, [c.id for c in unstarted], self.clock())

    async def _claim_loop(self, record: NoticeRecord, channel: Channel, lane: Lane) -> None:
        # Claims are refilled in batches once the queue is half empty: one query per batch.
        batch = max(4 * lane.settings.concurrency, CLAIM_BATCH)
        while not self.stopping.is_set():
            room = batch - lane.queue.qsize()
            claimed: list[Claimed] = []
            if room >= batch // 2:
                now = self.clock()
                claimed = await self.ledger.claim(record.id, channel.value, self.owner, now,
                                                  now + lane.lease(batch), room)
            for item in claimed:
                lane.in_flight += 1
                lane.queue.put_nowait(item)
            if claimed:
                continue
            if lane.in_flight:
                await lane.wait_for_a_finish(IDLE_POLL_SECONDS)
                continue
            wake = await self.ledger.next_wakeup(record.id, channel.value)
            if wake is None:
                return
            seconds = (wake - self.clock()).total_seconds()
            await self.sleep(min(max(seconds, 0.02), IDLE_POLL_SECONDS))

    async def _confirm_loop(self, record: NoticeRecord, channel: Channel, backend: Backend
                            ) -> bool:
        """Ask the provider about submitted deliveries until each has ended; True as soon
        as some are due for another attempt."""
        poll_seconds = self.inputs.config.channels[channel].poll_seconds
        while not self.stopping.is_set():
            submitted = await self.ledger.submitted(record.id, channel.value)
            if not submitted:
                return False
            by_ref = {ref: item for item, ref in submitted}
            try:
                ended = await backend.poll(list(by_ref))
            except TransientError as exc:
                log.warning("%s; asking again in %s s", exc, poll_seconds)
                ended = {}
            outcomes = [Outcome(by_ref[ref].id, DeliveryState.DELIVERED) if error is None
                        else self._after_error(by_ref[ref], error)
                        for ref, error in ended.items()]
            await self.ledger.settle(outcomes, self.clock())
            for outcome in outcomes:
                if self.on_progress is not None:
                    self.on_progress(channel, outcome.state)
            if any(outcome.state is DeliveryState.PENDING for outcome in outcomes):
                return True
            if len(outcomes) < len(submitted):
                await self.sleep(poll_seconds)
        return False

    async def _work(self, notice: Notice, record: NoticeRecord, lane: Lane, backend: Backend,
                    committer: GroupCommit) -> None:
        while (item := await lane.queue.get()) is not None:
            try:
                outcome = await self._deliver(notice, record, item, lane, backend)
                await committer.record(outcome)
            finally:
                lane.finished()
            if self.on_progress is not None:
                self.on_progress(lane.settings.channel, outcome.state)

    async def _deliver(self, notice: Notice, record: NoticeRecord, item: Claimed, lane: Lane,
                       backend: Backend) -> Outcome:
        channel = lane.settings.channel
        contact = self._contacts.get(item.contact_id)
        if contact is None:
            return Outcome(item.id, DeliveryState.FAILED, error_code="contact-removed",
                           last_error="the contact is no longer in contacts/")
        await lane.limiter.wait()
        sent_at = self.clock()
        try:
            outgoing = await self._outgoing(notice, record, item, contact, channel, sent_at)
        except InputError as exc:
            return Outcome(item.id, DeliveryState.FAILED, error_code="render",
                           last_error=str(exc))
        try:
            receipt = await backend.send(outgoing)
        except ChannelError as exc:
            return self._after_error(item, exc)
        except Exception as exc:
            # A backend's own bug must not stop the broadcast (a dead worker would leave its
            # claims waiting forever); the message may have gone out, so: uncertain.
            log.exception("delivery %s to %s: unexpected error in the %s backend", item.id,
                          item.address, backend.name)
            return Outcome(item.id, DeliveryState.UNCERTAIN, error_code="internal",
                           last_error=f"{type(exc).__name__}: {exc}")
        # A backend that confirms later (HylaFAX) is polled until its job ends.
        accepted = DeliveryState.SUBMITTED if backend.confirms_later else DeliveryState.SENT
        return Outcome(item.id, accepted, provider_ref=receipt.provider_ref, sent_at=sent_at)

    async def _outgoing(self, notice: Notice, record: NoticeRecord, item: Claimed,
                        contact: Contact, channel: Channel, sent_at: datetime) -> Outgoing:
        message = self._renderer.render(notice, contact, channel, sent_at)
        if message.address != item.address:  # the contact's address changed since planning
            message = replace(message, address=item.address)
        document = await self._fax_document(message.body) if channel is Channel.FAX else None
        key = notice.key
        from_mailbox = self.inputs.config.channels[Channel.EMAIL].from_address
        return Outgoing(item.id, key, message, message_id(key, contact.id, channel, from_mailbox),
                        sent_at, item.attempts, delivery_tag(record, item.id), document)

    def _after_error(self, item: Claimed, exc: ChannelError) -> Outcome:
        log.warning("delivery %s to %s failed (attempt %s): %s", item.id, item.address,
                    item.attempts, exc)
        return outcome_of_error(item, exc, self.inputs.config.retry, self.clock(), self.draw())

    async def _fax_document(self, html: str) -> FaxDocument:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._fax_thread, self._fax_pages.render, html)
