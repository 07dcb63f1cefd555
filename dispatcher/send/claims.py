"""A channel's side of sending a notice: what it claims from the ledger and when. Claims in
batches while the provider answers, one probe at a time while it does not, nothing new
after the notice's deadline (what is left expires); for providers that confirm later, the
polling of submitted deliveries. Mixed into ``Dispatcher``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

from dispatcher.clock import Clock, Sleep
from dispatcher.errors import ChannelError, TransientError
from dispatcher.ledger import Claimed, DeliveryState, Ledger, NoticeRecord, Outcome
from dispatcher.logs import event
from dispatcher.send.breaker import Breaker
from dispatcher.send.channels import Backend
from dispatcher.send.lanes import Lane
from dispatcher.send.outcome import outcome_of_error
from dispatcher.table import Channel, Deadline, Inputs, Notice

log = logging.getLogger("dispatcher.dispatch")

Progress = Callable[[Channel, DeliveryState], None]
IDLE_POLL_SECONDS = 1.0
CLAIM_BATCH = 64
T = TypeVar("T")


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
    refused: ChannelError | None = None  # the provider refused the sender: stopped

    @property
    def channel(self) -> Channel:
        return self.lane.settings.channel


class Claims:
    """The claim and confirm loops; ``Dispatcher`` provides the attributes below."""

    inputs: Inputs
    ledger: Ledger
    clock: Clock
    sleep: Sleep
    draw: Callable[[], float]
    owner: str
    on_progress: Progress | None
    stopping: asyncio.Event

    async def _ledger(self, call: Callable[[], Awaitable[T]]) -> T:
        raise NotImplementedError

    def _claimed(self, run: ChannelRun, items: list[Claimed]) -> None:
        """Called with each batch claimed, before its items are sent: work ahead."""

    def _claim_batch(self, run: ChannelRun) -> int:
        """How many deliveries to hold claimed: enough to keep every worker busy."""
        return max(4 * run.lane.settings.concurrency, CLAIM_BATCH)

    async def _claim_loop(self, run: ChannelRun) -> None:
        lane, breaker = run.lane, run.breaker
        while not self.stopping.is_set():
            if run.refused is not None:  # nothing more is claimed; what is queued goes back
                await self._release(run, lane.take_unstarted())
                if not lane.in_flight:
                    await self._hold_pending(run, run.refused)
                    return
                await lane.wait_for_a_finish(IDLE_POLL_SECONDS)
                continue
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
            wake = await self._ledger(lambda: self.ledger.next_wakeup(
                run.record.id, run.channel.value, self.owner))
            if wake is None:
                return
            await self.sleep(self._pause(run, wake))

    async def _hold_pending(self, run: ChannelRun, refused: ChannelError) -> None:
        """The channel stops: each of its pending deliveries says why it waits."""
        await self._ledger(lambda: self.ledger.hold_pending(
            run.record.id, run.channel.value, refused.code, str(refused), self.clock()))

    async def _refill(self, run: ChannelRun) -> int:
        # Claims are refilled in batches once the queue is half empty: one query per batch.
        batch = self._claim_batch(run)
        room = batch - run.lane.queue.qsize()
        return await self._claim(run, room) if room >= batch // 2 else 0

    async def _claim(self, run: ChannelRun, limit: int) -> int:
        now = self.clock()
        if run.lane.held_until is not None and not run.lane.holds(now):
            # the lease ran out (the ledger did not answer renewals): what is queued is
            # no longer ours to send
            await self._release(run, run.lane.take_unstarted())
            run.lane.held_until = None
        lease_until = now + run.lane.lease(limit)
        claimed = await self._ledger(lambda: self.ledger.claim(
            run.record.id, run.channel.value, self.owner, now, lease_until, limit))
        if claimed:
            run.lane.leased(lease_until)
        self._claimed(run, claimed)
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
            await self._ledger(lambda: self.ledger.release(self.owner, unstarted,
                                                           self.clock()))

    async def _renew_leases(self, run: ChannelRun) -> None:
        """While the lane holds claims, extend their lease every third of it, so that no
        other sender takes over what this one is still working through."""
        lane = run.lane
        while True:
            await self.sleep(lane.lease_seconds / 3)
            if not lane.in_flight:
                continue
            now = self.clock()
            until = now + lane.lease(self._claim_batch(run))
            await self._ledger(partial(self.ledger.renew, self.owner, run.record.id,
                                       run.channel.value, now, until))
            lane.leased(until, renewal=True)

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

    def _after_poll_error(self, item: Claimed, exc: ChannelError) -> Outcome:
        log.warning("delivery %s to %s failed (attempt %s): %s", item.id, item.address,
                    item.attempts, exc)
        return outcome_of_error(item, exc, self.inputs.config.retry, self.clock(), self.draw())
