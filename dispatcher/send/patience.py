"""Waiting out a ledger that does not answer (PostgreSQL stopped, SQLite locked): the call
is tried again with backoff until it goes through, and the outage is logged once when it
begins and once when it ends. Outcomes waiting to be written are held meanwhile, so none
is lost and no delivery is sent again because of the outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from dispatcher.clock import Clock, Sleep
from dispatcher.errors import LedgerUnavailable
from dispatcher.logs import event
from dispatcher.table import RetryPolicy, spoken_duration

log = logging.getLogger("dispatcher.ledger")
T = TypeVar("T")


class Patience:
    """Runs ledger calls, waiting for the ledger to come back when it does not answer."""

    def __init__(self, policy: RetryPolicy, clock: Clock, sleep: Sleep,
                 draw: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._draw = draw
        self.down_since: datetime | None = None

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        tries = 0
        while True:
            try:
                result = await call()
            except LedgerUnavailable as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # a stop (Ctrl-C) landed in the ledger call and surfaced as the
                    # ledger going away: stop, do not wait for it to come back
                    raise asyncio.CancelledError from exc
                tries += 1
                self._went_away(exc)
                await self._sleep(self._policy.probe_delay(tries, self._draw()))
                continue
            self._came_back()
            return result

    def _went_away(self, exc: LedgerUnavailable) -> None:
        if self.down_since is not None:
            return
        self.down_since = self._clock()
        event(log, logging.WARNING, "ledger unreachable, holding outcomes and retrying",
              since=self.down_since, error=str(exc))

    def _came_back(self) -> None:
        if self.down_since is None:
            return
        seconds = (self._clock() - self.down_since).total_seconds()
        self.down_since = None
        event(log, logging.INFO, "ledger reachable again", after=spoken_duration(seconds))
