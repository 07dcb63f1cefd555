"""What a table will do from ``now``, for `check`: every notice still ahead with its time,
and the mistakes only time shows (a broadcast window gone by with nothing sent, an
advance notice or a reminder in the night).

Pure: the table, the ledger's states and ``now`` in, findings out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from dispatcher.ledger import BEGUN_STATES, NoticeState
from dispatcher.schedule.decide import Action, decide
from dispatcher.table import (
    PLANNED,
    Notice,
    Phase,
    Slot,
    Window,
    WorkReports,
    active_slot,
    notice_key,
)

NIGHT_FROM, NIGHT_UNTIL = time(21), time(8)  # local time: no advance notice or reminder then
_PLANNED = (Action.SCHEDULE, Action.SEND_NOW, Action.RESUME)
_NIGHT_FIXES = {
    Phase.ANNOUNCE: "set [dispatcher] announce_at (the advance notice's time of day)",
    Phase.REMINDER: "change the reminders' leads ([reminders], or the window's own)",
}


@dataclass(frozen=True)
class Ahead:
    """A notice the table will send, and when (``now`` for one due already)."""

    notice: Notice
    at: datetime


@dataclass(frozen=True)
class Finding:
    """Something wrong with a window at ``now``: the slot and key it concerns."""

    window: Window
    slot: str
    key: str
    what: str


def notices_ahead(windows: Iterable[Window], active_slots: Mapping[str, str],
                  notice_states: Mapping[str, NoticeState], now: datetime,
                  catch_up: timedelta, reports: WorkReports | None = None,
                  overrun_after: timedelta = timedelta(minutes=10)) -> list[Ahead]:
    """Every notice the daemon would send from ``now`` on, as it decides them, in order."""
    decisions = decide(windows, active_slots, notice_states, now, catch_up, reports=reports,
                       overrun_after=overrun_after)
    return sorted((Ahead(d.notice, max(d.at, now)) for d in decisions
                   if d.action in _PLANNED), key=lambda ahead: ahead.at)


def gone_by(windows: Iterable[Window], active_slots: Mapping[str, str],
            notice_states: Mapping[str, NoticeState], now: datetime, zone: tzinfo
            ) -> tuple[list[Finding], list[Finding]]:
    """Errors and warnings for broadcast windows whose active slot has ended with nothing
    sent for it: an error when no later slot is still ahead (a date typed wrong: nobody
    will be told anything), a warning naming the reserve slot to postpone to if one is."""
    errors, warnings = [], []
    for window in windows:
        slot = active_slot(window, active_slots)
        if not window.broadcast or slot.end > now or _begun(window, slot, notice_states):
            continue
        ahead = [s for s in window.slots if s.start > now]
        ended = f"its {_slot_words(slot)} ended {when(slot.end, zone)}"
        if ahead:
            later = window.slots[[s.name for s in window.slots].index(slot.name) + 1:]
            to = "" if later and later[0] == ahead[0] else f" --to {ahead[0].name}"
            warnings.append(Finding(window, slot.name, "start", (
                f"window {window.number} ({window.id}): {ended} and nothing was sent for it; "
                f"if the work did not take place, `dispatcher postpone {window.number}{to}` "
                f"moves it to {ahead[0].name}")))
        else:
            errors.append(Finding(window, slot.name, "start", (
                f"window {window.number} ({window.id}) is broadcast but {ended} with no "
                f"slot still ahead: none of its notices will be sent; correct its dates "
                f"(or add a reserve slot), or set notify = \"none\"")))
    return errors, warnings


def at_night(ahead: Iterable[Ahead], zone: tzinfo) -> list[Finding]:
    """A warning per window whose advance notice or reminders fall between 21:00 and 08:00
    local time: fax machines ring and phones buzz in the merchants' night."""
    by_window: dict[str, list[Ahead]] = {}
    for item in ahead:
        if item.notice.phase in (Phase.ANNOUNCE, Phase.REMINDER) and _is_night(item.at, zone):
            by_window.setdefault(item.notice.window.id, []).append(item)
    findings = []
    for items in by_window.values():
        window = items[0].notice.window
        listed = ", ".join(f"{i.notice.tag} {when(i.at, zone)}"
                           for i in items)
        fixes = [fix for phase, fix in _NIGHT_FIXES.items()
                 if any(i.notice.phase is phase for i in items)]
        findings.append(Finding(window, items[0].notice.slot.name, "start", (
            f"window {window.number} ({window.id}): {listed} "
            f"{'falls' if len(items) == 1 else 'fall'} at night "
            f"({NIGHT_FROM:%H:%M}–{NIGHT_UNTIL:%H:%M}); if that is not meant, "
            f"{' and '.join(fixes)}")))
    return findings


def when(moment: datetime, zone: tzinfo) -> str:
    """``2021-07-19 01:00+09:00``: a moment as `check` prints it, in the table's zone."""
    return moment.astimezone(zone).isoformat(" ", "minutes")


def _begun(window: Window, slot: Slot, notice_states: Mapping[str, NoticeState]) -> bool:
    """Whether anything of ``slot``'s start or end went out (the work's night took place)."""
    return any(notice_states.get(notice_key(window.id, slot.name, phase.value)) in BEGUN_STATES
               for phase in (Phase.START, Phase.END))


def _slot_words(slot: Slot) -> str:
    return "planned slot" if slot.name == PLANNED else f"reserve slot {slot.name}"


def _is_night(moment: datetime, zone: tzinfo) -> bool:
    local = moment.astimezone(zone).time()
    return local >= NIGHT_FROM or local < NIGHT_UNTIL
