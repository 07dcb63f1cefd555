"""The published schedule as values: one entry per window, built from the table, the
ledger's active slots and ``now``. Pure; the three files are rendered from these entries
only, so the page, the calendar and the feed cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dispatcher.table import PLANNED, Config, Window, active_slot, jp_range


class WorkState(StrEnum):
    UPCOMING = "upcoming"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


PROGRESS_LABELS = {
    WorkState.UPCOMING: "予定",
    WorkState.IN_PROGRESS: "作業中",
    WorkState.COMPLETED: "完了",
    WorkState.CANCELLED: "中止",
}


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
    progress: WorkState
    services: tuple[str, ...]

    def snapshot(self) -> dict[str, Any]:
        """The entry as JSON values: what the ledger keeps to number its versions."""
        return {
            "window_id": self.window_id, "number": self.number, "title": self.title,
            "impact": self.impact, "impact_detail": self.impact_detail,
            "slot": _span_json(self.slot), "reserves": [_span_json(s) for s in self.reserves],
            "moved_from": _span_json(self.moved_from) if self.moved_from else None,
            "progress": self.progress.value, "services": list(self.services),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Entry:
        moved = data["moved_from"]
        return cls(data["window_id"], data["number"], data["title"], data["impact"],
                   data["impact_detail"], _span(data["slot"]),
                   tuple(_span(s) for s in data["reserves"]), _span(moved) if moved else None,
                   WorkState(data["progress"]), tuple(data["services"]))


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


def work_state_at(slot: Span, now: datetime) -> WorkState:
    if now < slot.start:
        return WorkState.UPCOMING
    return WorkState.IN_PROGRESS if now < slot.end else WorkState.COMPLETED


def entries(config: Config, active_slots: Mapping[str, str], now: datetime) -> list[Entry]:
    """Every window of the table, in its active slot, as of ``now``."""
    tz = config.settings.timezone
    services = tuple(s.name for s in config.affected_services)
    return [_entry(w, active_slots, now, services, tz) for w in config.windows]


def cancelled(snapshot: Mapping[str, Any]) -> Entry:
    """A window that left the table, as last published, marked cancelled."""
    return Entry.from_snapshot({**snapshot, "progress": WorkState.CANCELLED.value})


def by_start(published: Sequence[Published]) -> list[Published]:
    return sorted(published, key=lambda p: (p.entry.slot.start, p.entry.number))


def _entry(window: Window, active_slots: Mapping[str, str], now: datetime,
           services: tuple[str, ...], tz: Any) -> Entry:
    slot = active_slot(window, active_slots)
    span = Span(slot.start.astimezone(tz), slot.end.astimezone(tz))
    planned = window.planned
    moved = (Span(planned.start.astimezone(tz), planned.end.astimezone(tz))
             if slot.name != PLANNED else None)
    later = window.slots[window.slots.index(slot) + 1:]
    return Entry(window.id, window.number, window.title, window.impact, window.impact_detail,
                 span, tuple(Span(s.start.astimezone(tz), s.end.astimezone(tz)) for s in later),
                 moved, work_state_at(span, now), services)


def _span_json(span: Span) -> dict[str, str]:
    return {"start": span.start.isoformat(), "end": span.end.isoformat()}


def _span(data: Mapping[str, str]) -> Span:
    return Span(datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]))
