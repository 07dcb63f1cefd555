"""What the parts of one sending run share: the ledger (asked patiently), the owner of its
claims, the clock, the retry policy, the stop request and the progress callback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dispatcher.clock import Clock, Sleep
from dispatcher.ledger import DeliveryState, Ledger
from dispatcher.send.patience import Patience
from dispatcher.table import Channel, RetryPolicy

OnProgress = Callable[[Channel, DeliveryState], None]
OnOutage = Callable[[Channel, bool], None]  # a channel's provider stopped (True) or answers
T = TypeVar("T")


@dataclass
class SendingContext:
    ledger: Ledger
    owner: str
    clock: Clock
    sleep: Sleep
    draw: Callable[[], float]
    retry: RetryPolicy
    patience: Patience
    stopping: asyncio.Event
    on_progress: OnProgress | None = None
    on_outage: OnOutage | None = None

    def outage_hook(self, channel: Channel) -> Callable[[bool], None] | None:
        on_outage = self.on_outage
        if on_outage is None:
            return None
        return lambda down: on_outage(channel, down)

    async def ask(self, call: Callable[[], Awaitable[T]]) -> T:
        """A ledger call, waited out while the ledger does not answer (``Patience``)."""
        return await self.patience(call)

    def progressed(self, channel: Channel, state: DeliveryState, count: int = 1) -> None:
        if self.on_progress is not None:
            for _ in range(count):
                self.on_progress(channel, state)
