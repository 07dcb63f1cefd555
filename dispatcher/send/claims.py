"""A channel's side of sending a notice: what it claims from the ledger and when. Claims in
batches while the provider answers, one probe at a time while it does not, nothing new
after the notice's deadline (what is left expires); for providers that confirm later, the
polling of submitted deliveries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from dispatcher.errors import ChannelError, TransientError
from dispatcher.ledger import Claimed, DeliveryState, NoticeRecord, Outcome, Suppression
from dispatcher.logs import event
from dispatcher.send.breaker import Breaker
from dispatcher.send.channels import WRONG_NUMBER, Backend
from dispatcher.send.context import SendingContext
from dispatcher.send.lanes import Lane
from dispatcher.send.outcome import outcome_of_error
from dispatcher.send.strategy import ChannelStrategy
from dispatcher.table import Channel, Deadline, Notice

log = logging.getLogger("dispatcher.dispatch")

IDLE_POLL_SECONDS = 1.0
DEADLINE_LOOK_SECONDS = 1.0


@dataclass
class ChannelRun:
    """One channel of one notice being sent: its lane, its breaker, its strategy (and
    backend), and the time the notice stops mattering."""

    notice: Notice
    record: NoticeRecord
    lane: Lane
    breaker: Breaker
    strategy: ChannelStrategy
    deadline: Deadline
    refused: ChannelError | None = None  # the provider refused the sender: stopped
    escalating: int | None = None  # an escalation: the id of the notice it escalates
    # reads the deadline as the night has it now (`done`, a postponement): see look_again
    live_deadline: Callable[[], Awaitable[Deadline]] | None = None
    deadline_read_at: datetime | None = None

    @property
    def channel(self) -> Channel:
        return self.lane.settings.channel

    @property
    def backend(self) -> Backend:
        return self.strategy.backend

    def claim_batch(self) -> int:
        return self.strategy.claim_batch(self.lane.settings.concurrency)


class Claims:
    """The claim, lease-renewal and confirm loops of a channel run."""

    def __init__(self, context: SendingContext) -> None:
        self._context = context

    async def claim_loop(self, run: ChannelRun) -> None:
        c, lane, breaker = self._context, run.lane, run.breaker
        while not c.stopping.is_set():
            await self.look_at_the_deadline(run)
            if run.refused is not None:  # nothing more is claimed; what is queued goes back
                await self.release(run, lane.take_unstarted())
                if not lane.in_flight:
                    await self._hold_pending(run, run.refused)
                    return
                await lane.wait_for_a_finish(IDLE_POLL_SECONDS)
                continue
            if c.clock() >= run.deadline.at:
                await self._expire_unsent(run)
            elif breaker.is_open:
                if not breaker.probing:  # what was claimed before it opened goes back
                    await self.release(run, lane.take_unstarted())
                if breaker.probe_due() and not lane.in_flight and await self._claim(run, 1):
                    breaker.start_probe()
                    continue
            elif await self._refill(run):
                continue
            if lane.in_flight:
                await lane.wait_for_a_finish(IDLE_POLL_SECONDS)
                continue
            wake = await c.ask(lambda: c.ledger.next_wakeup(
                run.record.id, run.channel.value, c.owner, c.clock()))
            if wake is None:
                return
            await c.sleep(self._pause(run, wake))

    async def look_at_the_deadline(self, run: ChannelRun) -> None:
        """Read the notice's deadline again, at most every ``DEADLINE_LOOK_SECONDS``: a
        `done`, an extension or a postponement made while it is sending changes it at
        once, and what is left expires with the reason."""
        c = self._context
        now = c.clock()
        if run.live_deadline is None or (
                run.deadline_read_at is not None
                and (now - run.deadline_read_at).total_seconds() < DEADLINE_LOOK_SECONDS):
            return
        run.deadline = await c.ask(run.live_deadline)
        run.deadline_read_at = now

    async def release(self, run: ChannelRun, unstarted: list[Claimed]) -> None:
        c = self._context
        if unstarted:
            await c.ask(lambda: c.ledger.release(c.owner, unstarted, c.clock()))

    async def renew_leases(self, run: ChannelRun) -> None:
        """While the lane holds claims, extend their lease every third of it, so that no
        other sender takes over what this one is still working through."""
        c, lane = self._context, run.lane
        while True:
            await c.sleep(lane.lease_seconds / 3)
            if not lane.in_flight:
                continue
            now = c.clock()
            until = now + lane.lease(run.claim_batch())
            await c.ask(partial(c.ledger.renew, c.owner, run.record.id, run.channel.value,
                                now, until))
            lane.leased(until, renewal=True)

    async def confirm_loop(self, run: ChannelRun) -> bool:
        """Ask the provider about submitted deliveries until each has ended; True as soon
        as some are due for another attempt."""
        c, channel, record = self._context, run.channel, run.record
        poll_seconds = run.backend.poll_seconds
        while not c.stopping.is_set():
            submitted = await c.ask(lambda: c.ledger.submitted(record.id, channel.value))
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
            await c.ask(partial(c.ledger.settle, outcomes, c.clock()))
            await self._suppress_wrong_numbers(outcomes, by_ref.values())
            for outcome in outcomes:
                c.progressed(channel, outcome.state)
            if any(outcome.state is DeliveryState.PENDING for outcome in outcomes):
                return True
            if len(outcomes) < len(submitted):
                await c.sleep(poll_seconds)
        return False

    async def _suppress_wrong_numbers(self, outcomes: Iterable[Outcome],
                                      items: Iterable[Claimed]) -> None:
        """A fax number not in service goes on the suppression list, to be corrected."""
        c = self._context
        wrong = {o.delivery_id: o for o in outcomes if o.error_code == WRONG_NUMBER}
        entries = [Suppression(Channel.FAX.value, item.address, "fax number not in service",
                               wrong[item.id].last_error or "", f"delivery {item.id}",
                               c.clock()) for item in items if item.id in wrong]
        if entries:
            await c.ask(lambda: c.ledger.suppress(entries))

    async def _hold_pending(self, run: ChannelRun, refused: ChannelError) -> None:
        """The channel stops: each of its pending deliveries says why it waits."""
        c = self._context
        await c.ask(lambda: c.ledger.hold_pending(
            run.record.id, run.channel.value, refused.code, str(refused), c.clock()))

    async def _refill(self, run: ChannelRun) -> int:
        # Claims are refilled in batches once the queue is half empty: one query per batch.
        batch = run.claim_batch()
        room = batch - run.lane.queue.qsize()
        return await self._claim(run, room) if room >= batch // 2 else 0

    async def _claim(self, run: ChannelRun, limit: int) -> int:
        c = self._context
        now = c.clock()
        if run.lane.held_until is not None and not run.lane.holds(now):
            # the lease ran out (the ledger did not answer renewals): what is queued is
            # no longer ours to send
            await self.release(run, run.lane.take_unstarted())
            run.lane.held_until = None
        lease_until = now + run.lane.lease(limit)
        claimed = await c.ask(lambda: c.ledger.claim(
            run.record.id, run.channel.value, c.owner, now, lease_until, limit))
        if claimed:
            run.lane.leased(lease_until)
        run.strategy.claimed(run.notice, claimed)
        for item in claimed:
            run.lane.in_flight += 1
            run.lane.queue.put_nowait(item)
        return len(claimed)

    def _pause(self, run: ChannelRun, wake: datetime) -> float:
        """Seconds to sleep before looking again: until the next delivery is due (or the next
        probe, while the provider is away), never past the deadline, at most a second."""
        if run.breaker.next_probe_at is not None:
            wake = max(wake, run.breaker.next_probe_at)
        seconds = (min(wake, run.deadline.at) - self._context.clock()).total_seconds()
        return min(max(seconds, 0.02), IDLE_POLL_SECONDS)

    async def _expire_unsent(self, run: ChannelRun) -> None:
        c = self._context
        await self.release(run, run.lane.take_unstarted())
        expired = await c.ask(lambda: c.ledger.expire(
            run.record.id, run.channel.value, run.deadline.reason, c.clock()))
        if expired:
            event(log, logging.WARNING, "deliveries expired", notice=run.notice.key,
                  channel=run.channel.value, count=expired, reason=run.deadline.reason)
            c.progressed(run.channel, DeliveryState.EXPIRED, expired)

    def _after_poll_error(self, item: Claimed, exc: ChannelError) -> Outcome:
        c = self._context
        log.warning("delivery %s to %s failed (attempt %s): %s", item.id, item.address,
                    item.attempts, exc)
        return outcome_of_error(item, exc, c.retry, c.clock(), c.draw())
