"""When to try a delivery again. Pure: the random draw is passed in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``[retry]``: exponential backoff with jitter, up to ``max_attempts`` tries in all."""

    initial_delay_seconds: float = 2.0
    max_delay_seconds: float = 300.0
    max_attempts: int = 5
    retry_uncertain: bool = False

    def may_retry(self, attempts: int) -> bool:
        """Whether a delivery that has been tried ``attempts`` times may be tried again."""
        return attempts < self.max_attempts

    def delay(self, attempts: int, draw: float) -> float:
        """Seconds to wait after the ``attempts``-th failure; ``draw`` is uniform in [0, 1).

        The ceiling doubles with each attempt; the wait is drawn between half of it and all
        of it, so that many deliveries failing together do not come back together.
        """
        ceiling = min(self.max_delay_seconds,
                      self.initial_delay_seconds * 2.0 ** max(attempts - 1, 0))
        return ceiling * (0.5 + draw / 2)
