"""The figures of a night for its report (作業報告): per notice and channel, how many
deliveries ended in each state, why the failed ones failed, and when the first, half,
nine in ten and last of them were handed over. Pure: deliveries in, figures out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dispatcher.ledger import NOT_REACHED_STATES, DeliveryRecord


@dataclass(frozen=True)
class ChannelFigures:
    """One channel of one notice."""

    channel: str
    by_state: dict[str, int]
    failures: dict[str, int]  # why, for the deliveries that reached nobody
    handed_over: dict[str, datetime | None] = field(default_factory=dict)  # first, 50 %…

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "total": self.total, "states": self.by_state,
                "failures": self.failures, "handed_over": self.handed_over}


SHARES = (("first", 0.0), ("half", 0.5), ("nine_in_ten", 0.9), ("last", 1.0))


def channel_figures(channel: str, deliveries: Iterable[DeliveryRecord]) -> ChannelFigures:
    """The figures of ``deliveries`` (all of one notice's on ``channel``)."""
    mine = [d for d in deliveries if d.channel == channel]
    states = Counter(d.state for d in mine)
    not_reached = {s.value for s in NOT_REACHED_STATES}
    failures = Counter(_why(d) for d in mine if d.state in not_reached)
    times = sorted(d.sent_at for d in mine if d.sent_at is not None)
    return ChannelFigures(channel, dict(sorted(states.items())), dict(failures.most_common()),
                          {name: moment_at(times, share) for name, share in SHARES})


def moment_at(times: Sequence[datetime], share: float) -> datetime | None:
    """When ``share`` of the handed-over deliveries (sorted ``times``) had been handed
    over: the first for 0, the last for 1, else the one that completes that share."""
    if not times:
        return None
    return times[max(0, math.ceil(share * len(times)) - 1)]


def _why(delivery: DeliveryRecord) -> str:
    code = f"{delivery.error_code}: " if delivery.error_code else ""
    return f"{delivery.state}: {code}{delivery.last_error or 'no reason given'}"
