"""Maintenance windows, their slots and the effective schedule.

Pure: no I/O; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from dispatcher.errors import ArgumentError, StaleError, single

PLANNED = "planned"


class Phase(StrEnum):
    ANNOUNCE = "announce"  # the advance notice (予告), days before the planned slot
    REMINDER = "reminder"  # a lead time before the start, per channel
    START = "start"
    END = "end"
    POSTPONED = "postponed"
    # the work's real state, as operators report it (end_notice = "confirmed" and by hand)
    OVERRUN = "overrun"    # the end in force passed without `done` (作業延長のお知らせ)
    EXTENDED = "extended"  # `extend`: a new end (numbered: extended-1, extended-2…)
    UPDATE = "update"      # `update`: a progress report in the operator's words (経過報告)
    # `postpone --no-move`: the work stopped (中断), service back, the new date to come
    INTERRUPTED = "interrupted"


# the phases an operator's report makes, numbered in the order they were made
NUMBERED_PHASES = (Phase.EXTENDED, Phase.UPDATE)


class EndNotice(StrEnum):
    """When a window's end notice goes out: at the end in force, or once `done` says so."""

    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"


class Notify(StrEnum):
    BROADCAST = "broadcast"
    NONE = "none"


class Channel(StrEnum):
    FAX = "fax"
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"  # a phone call that speaks the notice (the contact's phone, else sms)


@dataclass(frozen=True)
class Step:
    """An escalation of a notice that asks to confirm: ``after`` its sending began, it goes
    again on ``channel`` to the contacts who have not confirmed ([confirm] steps; the
    call-out, [confirm] callout_after, is the one on voice)."""

    after: timedelta
    channel: Channel


def reserve_id(local_start: datetime) -> str:
    """The name of a reserve slot that has no ``id`` of its own: its local start,
    ``reserve-2021-08-23-0100``."""
    return f"reserve-{local_start:%Y-%m-%d-%H%M}"


@dataclass(frozen=True)
class Slot:
    """One time the work may happen: the planned slot or a reserve slot (予備日)."""

    name: str
    start: datetime
    end: datetime

    def overlaps(self, other: Slot) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class AffectedService:
    """A service that cannot be used while the work is in progress (影響内容), and a note
    on it (what still works)."""

    name: str
    note: str


@dataclass(frozen=True)
class Window:
    """One row of the maintenance table."""

    number: int
    id: str
    title: str
    impact: str
    impact_detail: str
    notify: Notify
    channels: tuple[Channel, ...]
    audience: tuple[str, ...]
    slots: tuple[Slot, ...]
    announce_before: timedelta = timedelta(0)  # 0 (the default): no advance notice
    # per channel, the lead times of its reminders (only channels the window sends on)
    reminders: tuple[tuple[Channel, tuple[timedelta, ...]], ...] = ()
    end_notice: EndNotice = EndNotice.SCHEDULED
    # the phases whose notices ask each contact to confirm ([confirm] phases, or its own),
    # and how they escalate to those who have not ([confirm] steps and callout_after)
    confirm: tuple[Phase, ...] = ()
    steps: tuple[Step, ...] = ()
    # the services its work stops, as its notices list them; None: the table's
    # [[affected_services]]
    services: tuple[AffectedService, ...] | None = None
    # the advance notice's time of day, with the configured zone (tzinfo) it is read in
    announce_at: time = time(10, 0)

    def confirms(self, phase: Phase) -> bool:
        return phase in self.confirm

    def step(self, channel: Channel) -> Step:
        """The escalation step on ``channel`` (one no longer configured: after 0)."""
        return next((s for s in self.steps if s.channel is channel), Step(timedelta(0), channel))

    @property
    def planned(self) -> Slot:
        return self.slots[0]

    @property
    def reserves(self) -> tuple[Slot, ...]:
        return self.slots[1:]

    @property
    def broadcast(self) -> bool:
        return self.notify is Notify.BROADCAST

    @property
    def reminder_leads(self) -> tuple[timedelta, ...]:
        """Every lead time a reminder goes out at, longest first."""
        leads = {lead for channel, times in self.reminders if channel in self.channels
                 for lead in times}
        return tuple(sorted(leads, reverse=True))

    def reminder_channels(self, lead: timedelta) -> tuple[Channel, ...]:
        """The channels whose reminders go out ``lead`` before the start."""
        wanted = {channel for channel, times in self.reminders if lead in times}
        return tuple(c for c in self.channels if c in wanted)

    def slot(self, name: str) -> Slot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        known = ", ".join(s.name for s in self.slots)
        raise single(ArgumentError, f"window {self.number}", f"no slot {name!r} (has {known})")


@dataclass(frozen=True)
class NextNotice:
    phase: Phase
    at: datetime
    lead: timedelta | None = None  # a reminder's lead time


def active_slot(window: Window, active_slots: Mapping[str, str]) -> Slot:
    """The slot in force: planned, unless ``active_slots`` (by window id) says it was moved."""
    return window.slot(active_slots.get(window.id, PLANNED))


def notice_times(window: Window, slot: Slot) -> list[NextNotice]:
    """Each notice of ``slot`` with its time, in order: the advance notice (planned slot
    only, unless switched off: a reserve slot's is the postponed notice), the reminders,
    the start and the end."""
    times = []
    if slot.name == PLANNED and window.announce_before:
        times.append(NextNotice(Phase.ANNOUNCE, announce_time(window, slot)))
    times += [NextNotice(Phase.REMINDER, slot.start - lead, lead)
              for lead in window.reminder_leads]
    return [*times, NextNotice(Phase.START, slot.start), NextNotice(Phase.END, slot.end)]


def announce_time(window: Window, slot: Slot) -> datetime:
    """When the advance notice goes: ``announce_before`` ahead of the start, on that day
    at ``announce_at`` local time (business hours, not the work's time of night); the
    day before if that is not before the start."""
    zone = window.announce_at.tzinfo or slot.start.tzinfo
    local = (slot.start - window.announce_before).astimezone(zone)
    day = datetime.combine(local.date(), window.announce_at.replace(tzinfo=zone))
    return day if day < slot.start else day - timedelta(days=1)


def following_slot(window: Window, slot: Slot) -> Slot | None:
    """The slot a postponement from ``slot`` moves to: the next reserve, or None."""
    names = [s.name for s in window.slots]
    index = names.index(slot.name) + 1
    return window.slots[index] if index < len(window.slots) else None


def find_window(windows: Sequence[Window], ref: str) -> Window:
    """A window by its table number (``3``) or its ``id``."""
    for window in windows:
        if ref == window.id or (ref.isdigit() and int(ref) == window.number):
            return window
    known = ", ".join(f"{w.number} ({w.id})" for w in windows)
    raise single(ArgumentError, "WINDOW", f"no window {ref!r}; the table has {known}")


def postponement_target(window: Window, current: Slot, to: str | None, now: datetime
                        ) -> Slot:
    """The slot a postponement from ``current`` at ``now`` moves to: ``to``, or the next
    reserve. ArgumentError if there is none, or ``to`` is not later than ``current``;
    StaleError if it has begun by ``now`` (the merchants would be told of a date gone)."""
    names = [s.name for s in window.slots]
    later = window.slots[names.index(current.name) + 1:]
    if to is None:
        if not later:
            raise single(ArgumentError, "WINDOW", f"window {window.number} is already on its "
                         f"last slot ({current.name}): there is no reserve slot to move to")
        target = later[0]
    else:
        target = window.slot(to)
        if target not in later:
            raise single(ArgumentError, "--to", f"window {window.number} is on "
                         f"{current.name}: it can only move forward, to "
                         f"{', '.join(s.name for s in later) or 'no slot'}")
    if target.start <= now:
        ahead = [s.name for s in later if s.start > now]
        hint = (f"the next one still ahead is {ahead[0]} (--to {ahead[0]})" if ahead else
                "no reserve slot is still ahead: add one to the table, then postpone")
        raise single(StaleError, "--to" if to else "WINDOW",
                     f"window {window.number}'s reserve slot {target.name} "
                     f"{'has passed' if target.end <= now else 'has begun'}: {hint}")
    return target
