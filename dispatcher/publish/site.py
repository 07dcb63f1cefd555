"""The published schedule as values: one entry per window, built from the table, the
ledger's active slots and ``now``. Pure; the three files are rendered from these entries
only, so the page, the calendar and the feed cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dispatcher.table import PLANNED, Config, Window, WorkReports, active_slot, jp_range, work_of


class PublishedState(StrEnum):
    """A window as published: its work's state (``WorkState``'s values), or cancelled."""

    UPCOMING = "upcoming"
    IN_PROGRESS = "in_progress"
    OVERRUNNING = "overrunning"
    EXTENDED = "extended"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


PROGRESS_LABELS = {
    PublishedState.UPCOMING: "予定",
    PublishedState.IN_PROGRESS: "作業中",
    PublishedState.OVERRUNNING: "作業中（終了予定超過）",
    PublishedState.EXTENDED: "延長中",
    PublishedState.COMPLETED: "終了",
    PublishedState.CANCELLED: "中止",
}
UNDER_WAY = (PublishedState.IN_PROGRESS, PublishedState.OVERRUNNING, PublishedState.EXTENDED)


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    @property
    def text(self) -> str:
        """As the notices write it: ``2021年7月19日(月) AM1:00～AM2:00``, 翌 past midnight."""
        return jp_range(self.start, self.end)


@dataclass(frozen=True)
class Entry:
    """One window as published: everything the page, the calendar and the feed show."""

    window_id: str
    number: int
    title: str
    impact: str
    impact_detail: str
    slot: Span
    reserves: tuple[Span, ...]
    moved_from: Span | None  # the planned slot, when the window was postponed
    progress: PublishedState
    services: tuple[str, ...]
    due_until: datetime | None = None  # the table's end, when the work was extended past it
    ended_at: datetime | None = None   # when the work ended, as `done` reported it

    def snapshot(self) -> dict[str, Any]:
        """The entry as JSON values: what the ledger keeps to number its versions."""
        return {
            "window_id": self.window_id, "number": self.number, "title": self.title,
            "impact": self.impact, "impact_detail": self.impact_detail,
            "slot": _span_json(self.slot), "reserves": [_span_json(s) for s in self.reserves],
            "moved_from": _span_json(self.moved_from) if self.moved_from else None,
            "progress": self.progress.value, "services": list(self.services),
            # only when set: an entry without reports keeps the digest it always had
            **({"due_until": self.due_until.isoformat()} if self.due_until else {}),
            **({"ended_at": self.ended_at.isoformat()} if self.ended_at else {}),
        }

    def shown_since(self) -> datetime | None:
        """When what the entry shows began, where the time says it: the work's start for
        one under way, its end (or when `done` said it ended) for one over; None where
        only the moment it was seen can say (an edit, a postponement, an extension)."""
        if self.progress is PublishedState.COMPLETED:
            return self.ended_at or self.slot.end
        if self.progress is PublishedState.IN_PROGRESS:
            return self.slot.start
        if self.progress is PublishedState.OVERRUNNING:
            return self.slot.end
        return None

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Entry:
        moved = data["moved_from"]
        return cls(data["window_id"], data["number"], data["title"], data["impact"],
                   data["impact_detail"], _span(data["slot"]),
                   tuple(_span(s) for s in data["reserves"]), _span(moved) if moved else None,
                   PublishedState(data["progress"]), tuple(data["services"]),
                   _moment(data.get("due_until")), _moment(data.get("ended_at")))


@dataclass(frozen=True)
class Version:
    """How many times an entry changed (the calendar's SEQUENCE) and when it last did."""

    sequence: int
    updated_at: datetime


@dataclass(frozen=True)
class Published:
    """An entry and its version, as the files show it."""

    entry: Entry
    version: Version


def entries(config: Config, active_slots: Mapping[str, str], now: datetime,
            reports: WorkReports | None = None) -> list[Entry]:
    """Every window of the table, in its active slot, as of ``now``, with its work as the
    operators reported it (``reports`` by window id and slot)."""
    tz = config.settings.timezone
    return [_entry(w, active_slots, now, tuple(s.name for s in config.services_of(w)), tz,
                   reports) for w in config.windows]


def cancelled(snapshot: Mapping[str, Any]) -> Entry:
    """A window that left the table, as last published, marked cancelled."""
    return Entry.from_snapshot({**snapshot, "progress": PublishedState.CANCELLED.value})


def by_start(published: Sequence[Published]) -> list[Published]:
    return sorted(published, key=lambda p: (p.entry.slot.start, p.entry.number))


def _entry(window: Window, active_slots: Mapping[str, str], now: datetime,
           services: tuple[str, ...], tz: Any, reports: WorkReports | None) -> Entry:
    slot = active_slot(window, active_slots)
    work = work_of(window, slot, reports)
    span = Span(slot.start.astimezone(tz), work.end.astimezone(tz))
    planned = window.planned
    moved = (Span(planned.start.astimezone(tz), planned.end.astimezone(tz))
             if slot.name != PLANNED else None)
    later = window.slots[window.slots.index(slot) + 1:]
    return Entry(window.id, window.number, window.title, window.impact, window.impact_detail,
                 span, tuple(Span(s.start.astimezone(tz), s.end.astimezone(tz)) for s in later),
                 moved, PublishedState(work.state(now).value), services,
                 slot.end.astimezone(tz) if work.extensions else None,
                 work.ended_at.astimezone(tz) if work.ended_at else None)


def _span_json(span: Span) -> dict[str, str]:
    return {"start": span.start.isoformat(), "end": span.end.isoformat()}


def _span(data: Mapping[str, str]) -> Span:
    return Span(datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
