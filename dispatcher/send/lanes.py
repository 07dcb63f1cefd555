"""The parts a channel's workers share: its queue of claimed deliveries (the lane), its
rate limit, and the group commit that writes outcomes together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

from dispatcher.clock import Clock, Sleep
from dispatcher.ledger import (
    Claimed,
    Ledger,
    Outcome,
)
from dispatcher.logs import event
from dispatcher.table import (
    ChannelConfig,
)

log = logging.getLogger("dispatcher.dispatch")


class Lane:
    """One channel's queue of claimed deliveries and its count of those not yet recorded."""

    def __init__(self, settings: ChannelConfig, limiter: RateLimiter, lease_seconds: float
                 ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.lease_seconds = lease_seconds
        self.queue: asyncio.Queue[Claimed | None] = asyncio.Queue()
        self.in_flight = 0
        # Until when every claim this lane holds is leased (renewals move it on).
        self.held_until: datetime | None = None
        self._finish = asyncio.Event()

    def leased(self, until: datetime, renewal: bool = False) -> None:
        """Claims were taken, or (``renewal``) every claim held renewed, until ``until``."""
        if renewal or self.held_until is None or not self.in_flight:
            self.held_until = until
        else:
            self.held_until = min(self.held_until, until)

    def holds(self, now: datetime) -> bool:
        """Whether the lane's claims are still its own at ``now`` (their lease not lost)."""
        return self.held_until is not None and now < self.held_until

    def lease(self, batch: int) -> timedelta:
        """Long enough for a full queue to drain at the channel's rate."""
        rate = self.settings.rate_per_second
        drain = 2 * batch / rate if rate else 0.0
        return timedelta(seconds=self.lease_seconds + drain)

    def finished(self) -> None:
        self.in_flight -= 1
        self._finish.set()

    def take_unstarted(self) -> list[Claimed]:
        """Empty the queue: the claimed deliveries no worker has started."""
        unstarted = []
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                unstarted.append(item)
                self.in_flight -= 1
        return unstarted

    async def wait_for_a_finish(self, timeout: float) -> None:
        """Return when a delivery has finished since the last call, or after ``timeout``."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel (Ctrl-C)
        # that lands as the event is set, and the claim loop would go on sending.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._finish.wait()
        self._finish.clear()


class RateLimiter:
    """At most ``rate`` sends a second (none if ``rate`` is None), evenly spaced."""

    def __init__(self, rate: float | None, clock: Clock, sleep: Sleep) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: datetime | None = None

    async def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        start = now if self._next is None or self._next < now else self._next
        self._next = start + timedelta(seconds=self._interval)
        delay = (start - now).total_seconds()
        if delay > 0:
            await self._sleep(delay)


class GroupCommit:
    """Writes outcomes in shared transactions; ``record`` returns once its outcome is written."""

    def __init__(self, ledger: Ledger, owner: str, clock: Clock,
                 patience: Callable[[Callable[[], Awaitable[int]]], Awaitable[int]]) -> None:
        self._ledger = ledger
        self._owner = owner
        self._clock = clock
        self._patience = patience  # waits out a ledger that does not answer
        self._waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: Outcome) -> None:
        """Write ``outcome`` (with the others waiting); returns once it is written, or was
        refused because its claim is no longer this owner's."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        await future

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                written = await self._patience(partial(self._ledger.record, self._owner,
                                                       [o for o, _ in batch], self._clock()))
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            if written < len(batch):
                event(log, logging.WARNING, "outcomes not written: their claim was taken over",
                      owner=self._owner, count=len(batch) - written)
            for _, future in batch:
                future.set_result(None)
