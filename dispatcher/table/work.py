"""The work's real state in one slot: the table's times, and what the operators reported
since (an extension, an update, ``done``). The table's times are estimates; the reports
are the truth of the night. Pure: no I/O; ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dispatcher.table.windows import (
    Channel,
    EndNotice,
    Slot,
    Window,
)


class Report(StrEnum):
    """What an operator can report of the work (each one audited and in the ledger)."""

    EXTENDED = "extended"  # a new end (延長)
    DONE = "done"          # the work is over (作業完了), at a time given or now
    UPDATE = "update"      # a progress report in the operator's words (経過報告)
    # the work was stopped (中断) and the window stays where it is, its new date to come
    # (`postpone --no-move`): over, like done, but its notice is the interrupted one
    INTERRUPTED = "interrupted"


ENDING = (Report.DONE, Report.INTERRUPTED)  # the reports that end the work, once


@dataclass(frozen=True)
class WorkReport:
    """One report of the work in one slot of one window, as the ledger keeps it."""

    window_id: str
    slot: str
    kind: Report
    number: int              # 1, 2, … per kind, in the order made (done: 1)
    at: datetime             # when it was made
    until: datetime | None   # extended: the new end; done: when the work ended
    text: str                # update: its text; extended: the reason (for the audit)
    actor: str
    channels: tuple[Channel, ...] = ()  # update: the channels it goes out on; (): all
    # how many reports of the slot the operator saw (None: not checked): one made since
    # (a `done` and an `extend` at once) makes this one stale
    seen: int | None = None

    @property
    def tag(self) -> str:
        """The report as the ledger names its notice: ``extended-2``, ``update-1``; ``done``
        (whose notice is the end notice), ``interrupted``."""
        return self.kind.value if self.kind in ENDING else f"{self.kind.value}-{self.number}"


class WorkState(StrEnum):
    UPCOMING = "upcoming"
    IN_PROGRESS = "in_progress"
    OVERRUNNING = "overrunning"  # past the end in force, not reported done (confirmed only)
    EXTENDED = "extended"        # in progress, past the table's end, before the new one
    COMPLETED = "completed"      # reported done, or (end_notice = "scheduled") its end passed


@dataclass(frozen=True)
class Work:
    """The work of one slot as known: when it ends, and what was reported."""

    slot: Slot
    confirmed: bool  # end_notice = "confirmed": only `done` ends it
    extensions: tuple[WorkReport, ...] = ()
    updates: tuple[WorkReport, ...] = ()
    done: WorkReport | None = None  # `done`, or the interruption (``Report.INTERRUPTED``)

    @property
    def end(self) -> datetime:
        """The end in force: when the work ended (`done`), else the one it was due at."""
        if self.done is not None and self.done.until is not None:
            return self.done.until
        return self.due_end

    @property
    def due_end(self) -> datetime:
        """When the work is due to end: the last extension's end, else the table's."""
        if self.extensions and self.extensions[-1].until is not None:
            return self.extensions[-1].until
        return self.slot.end

    @property
    def ended_at(self) -> datetime | None:
        """When the work ended, as `done` reported it."""
        return self.done.until if self.done is not None else None

    @property
    def over_at(self) -> datetime | None:
        """When the work is over, if known: when `done` was reported, or (a scheduled end)
        the end in force; None while a confirmed end waits for `done`."""
        if self.done is not None:
            return self.done.at
        return None if self.confirmed else self.end

    def overrun_at(self, after: timedelta) -> datetime:
        """When a confirmed end that passed without `done` is an overrun: ``after`` past the
        end it was due at (the overrun notice, and the operators' alert)."""
        return self.due_end + after

    def state(self, now: datetime) -> WorkState:
        if self.done is not None:
            return WorkState.COMPLETED
        if now < self.slot.start:
            return WorkState.UPCOMING
        if now < self.end:
            return WorkState.EXTENDED if self.extensions else WorkState.IN_PROGRESS
        return WorkState.OVERRUNNING if self.confirmed else WorkState.COMPLETED

    def next_number(self, kind: Report) -> int:
        """The number the next report of ``kind`` gets: ``extended-2`` after one."""
        return len(self.extensions if kind is Report.EXTENDED else self.updates) + 1


# The night board shows the works under way, those due to start within a day, and those
# over within the last twelve hours.
TONIGHT_AHEAD = timedelta(hours=24)
TONIGHT_BEHIND = timedelta(hours=12)


def on_tonight(work: Work, now: datetime) -> bool:
    """Whether the night board at ``now`` shows ``work``."""
    state = work.state(now)
    if state is WorkState.UPCOMING:
        return work.slot.start - now <= TONIGHT_AHEAD
    if state is WorkState.COMPLETED:
        return now - (work.over_at or work.end) <= TONIGHT_BEHIND
    return True


WorkKey = tuple[str, str]  # (window id, slot name): whose work the reports are
WorkReports = Mapping[WorkKey, Sequence[WorkReport]]


def work_of(window: Window, slot: Slot, reports: WorkReports | None = None) -> Work:
    """The work of ``window`` in ``slot``, from its reports (by window id and slot)."""
    mine = (reports or {}).get((window.id, slot.name), ())
    return Work(slot, window.end_notice is EndNotice.CONFIRMED,
                _numbered(mine, Report.EXTENDED), _numbered(mine, Report.UPDATE),
                next((r for r in mine if r.kind in ENDING), None))


def _numbered(reports: Iterable[WorkReport], kind: Report) -> tuple[WorkReport, ...]:
    return tuple(sorted((r for r in reports if r.kind is kind), key=lambda r: r.number))
