"""A channel's circuit breaker: when its provider stops answering, the channel pauses and
sends one probe per backoff step instead of spending every delivery's attempts on it.

Pure state on an injected clock and random draw; the dispatcher does the sending and the
logging.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.clock import Clock
from dispatcher.table import RetryPolicy


@dataclass(frozen=True)
class Outage:
    """A time the provider did not answer, once it has answered again."""

    began_at: datetime
    ended_at: datetime
    probes: int
    error: str

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.began_at).total_seconds()


class Breaker:
    """Closed while the provider answers; open from its first unanswered attempt until an
    attempt started after that (a probe) is answered."""

    def __init__(self, policy: RetryPolicy, clock: Clock, draw: Callable[[], float],
                 on_change: Callable[[bool], None] | None = None) -> None:
        self._policy = policy
        self._clock = clock
        self._draw = draw
        self._on_change = on_change  # told True when it opens, False when it closes
        self.opened_at: datetime | None = None
        self.next_probe_at: datetime | None = None
        self.probes = 0  # unanswered attempts in this outage, the first failure included
        self.probing = False
        self.error = ""

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def probe_due(self) -> bool:
        return (self.is_open and not self.probing and self.next_probe_at is not None
                and self._clock() >= self.next_probe_at)

    def start_probe(self) -> None:
        self.probing = True

    def unanswered(self, started_at: datetime, error: str) -> bool:
        """An attempt started at ``started_at`` got no answer; True if this opens the breaker.
        Attempts already under way when it opened tell nothing new."""
        if self.opened_at is None:
            self.opened_at, self.probes, self.error = self._clock(), 1, error
            self._schedule_probe()
            self._changed(True)
            return True
        if started_at >= self.opened_at:
            self.probes += 1
            self.error = error
            self.probing = False
            self._schedule_probe()
        return False

    def answered(self, started_at: datetime) -> Outage | None:
        """The provider answered an attempt started at ``started_at`` (even with an error
        about that message); the outage that this ends, if any."""
        if self.opened_at is None or started_at < self.opened_at:
            return None
        outage = Outage(self.opened_at, self._clock(), self.probes, self.error)
        self.opened_at = self.next_probe_at = None
        self.probes, self.probing = 0, False
        self._changed(False)
        return outage

    def leave(self) -> None:
        """The send is over: an open breaker stops saying the provider is down (nobody
        asks it any more), and what it knew of the outage is dropped."""
        if self.opened_at is not None:
            self.opened_at = self.next_probe_at = None
            self._changed(False)

    def _changed(self, is_open: bool) -> None:
        if self._on_change is not None:
            self._on_change(is_open)

    def _schedule_probe(self) -> None:
        wait = self._policy.probe_delay(self.probes, self._draw())
        self.next_probe_at = self._clock() + timedelta(seconds=wait)
