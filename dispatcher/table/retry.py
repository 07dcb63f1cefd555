"""When to try a delivery again, and until when its notice matters. Pure: the random draw
and the times are passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.table.notice import Notice
from dispatcher.table.windows import Phase
from dispatcher.table.work import Work

DEFAULT_END_NOTICE_HOURS = 12.0
# The channel's probes back off like deliveries do, but never wait longer than this: a
# provider that comes back is noticed within it.
PROBE_CEILING_SECONDS = 30.0


@dataclass(frozen=True)
class Deadline:
    """When a notice stops mattering, and why (``reason`` is shown with ``expired``)."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class RetryPolicy:
    """``[retry]``: exponential backoff with jitter, for as long as the notice matters."""

    initial_delay_seconds: float = 2.0
    max_delay_seconds: float = 300.0
    max_attempts: int | None = None
    retry_uncertain: bool = False
    end_notice_hours: float = DEFAULT_END_NOTICE_HOURS
    give_up_after_minutes: float | None = None

    def may_retry(self, attempts: int) -> bool:
        """Whether a delivery that has been tried ``attempts`` times may be tried again."""
        return self.max_attempts is None or attempts < self.max_attempts

    def delay(self, attempts: int, draw: float) -> float:
        """Seconds to wait after the ``attempts``-th failure; ``draw`` is uniform in [0, 1).

        The ceiling doubles with each attempt; the wait is drawn between half of it and all
        of it, so that many deliveries failing together do not come back together.
        """
        return _backoff(self.initial_delay_seconds, self.max_delay_seconds, attempts, draw)

    def probe_delay(self, probes: int, draw: float) -> float:
        """Seconds until the next probe of a channel whose provider has not answered
        ``probes`` probes (the failure that paused it counts as the first)."""
        ceiling = min(self.max_delay_seconds, PROBE_CEILING_SECONDS)
        return _backoff(self.initial_delay_seconds, ceiling, probes, draw)

    def deadline(self, notice: Notice, sending_since: datetime) -> Deadline:
        """When ``notice``'s deliveries not yet sent expire.

        A start notice matters until its slot ends, an end notice for ``end_notice_hours``
        after, a postponement until the new slot starts; ``give_up_after_minutes`` (counted
        from ``sending_since``, when the notice's sending began or was last retried) ends it
        sooner. A notice sent by hand after its time has passed gets ``end_notice_hours``
        from ``sending_since``: someone asked for it, so it matters to them.
        """
        natural = _natural_deadline(notice, self.end_notice_hours)
        if natural.at <= sending_since:
            hours = self.end_notice_hours
            natural = Deadline(sending_since + timedelta(hours=hours),
                               f"still not sent {_amount(hours, 'hour')} after it was sent late")
        if self.give_up_after_minutes is None:
            return natural
        minutes = self.give_up_after_minutes
        given_up = sending_since + timedelta(minutes=minutes)
        if given_up < natural.at:
            return Deadline(given_up, f"gave up after {_amount(minutes, 'minute')} "
                                      "([retry] give_up_after_minutes)")
        return natural


# The phases that tell of the work in progress: moot once the work is reported done.
_WHILE_THE_WORK_LASTS = (Phase.START, Phase.OVERRUN, Phase.EXTENDED)


def live_deadline(natural: Deadline, notice: Notice, active_slot: str, work: Work,
                  now: datetime) -> Deadline:
    """``natural`` (``RetryPolicy.deadline``), or sooner when the night has made the
    notice moot since it began sending: the window left its slot (for a postponed notice:
    left the slot it names), or the work it tells of was reported done."""
    slot = notice.new_slot if notice.phase is Phase.POSTPONED else notice.slot
    if slot is not None and slot.name != active_slot:
        moot = Deadline(now, f"the window moved on from {slot.name} to {active_slot}")
    elif work.done is not None and notice.phase in _WHILE_THE_WORK_LASTS:
        moot = Deadline(work.done.at, "the work was reported done")
    else:
        return natural
    return moot if moot.at < natural.at else natural


def _natural_deadline(notice: Notice, end_notice_hours: float) -> Deadline:
    slot = notice.slot
    if notice.phase is Phase.START:
        return Deadline(slot.end, "the work had ended: the end notice was due")
    if notice.phase is Phase.POSTPONED and notice.new_slot is not None:
        return Deadline(notice.new_slot.start, "the postponed work had begun")
    if notice.phase is Phase.ANNOUNCE:
        return Deadline(slot.start, "the work had begun")
    if notice.phase is Phase.REMINDER and notice.lead is not None:
        return Deadline(slot.start - notice.lead / 2,
                        "a reminder sent this late would arrive after half its lead time")
    return Deadline(slot.end + timedelta(hours=end_notice_hours),
                    f"still not sent {_amount(end_notice_hours, 'hour')} after the work ended")


def _backoff(initial: float, ceiling: float, attempts: int, draw: float) -> float:
    top = min(ceiling, initial * 2.0 ** max(attempts - 1, 0))
    return top * (0.5 + draw / 2)


def _amount(value: float, unit: str) -> str:
    number = f"{value:g}"
    return f"{number} {unit}" if number == "1" else f"{number} {unit}s"
