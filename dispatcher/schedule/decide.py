"""Which notice goes out when: the daemon's decisions, from the table, the ledger and ``now``.

Pure: no I/O. The scheduler turns each decision into a job, a send now, or a log line;
it keeps no state of its own that the ledger does not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dispatcher.ledger import NoticeState
from dispatcher.table import (
    Notice,
    Phase,
    Slot,
    Window,
    active_slot,
    build_notice,
    notice_key,
    notice_times,
)


class Action(StrEnum):
    SCHEDULE = "schedule"    # a job at ``at``
    SEND_NOW = "send-now"    # late but still meaningful, or left unfinished: send at once
    MISSED = "missed"        # too late to be meaningful: record it, send nothing


@dataclass(frozen=True)
class Decision:
    """What to do about one notice: send it at ``at``, send it now, or record it missed."""

    notice: Notice
    at: datetime
    action: Action

    @property
    def key(self) -> str:
        return self.notice.key

    @property
    def window(self) -> Window:
        return self.notice.window

    @property
    def slot(self) -> Slot:
        return self.notice.slot

    @property
    def phase(self) -> Phase:
        return self.notice.phase


def decide(
    windows: Iterable[Window],
    active_slots: Mapping[str, str],
    notice_states: Mapping[str, NoticeState],
    now: datetime,
    catch_up: timedelta,
    moves: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Decision]:
    """The notices of each broadcast window's active slot that still need work: the
    advance notice (planned slot only), the reminders, the start and the end.

    ``notice_states`` maps a notice key to its state in the ledger (``sending``,
    ``partial``, ``done``, ``missed``); ``moves`` the postponements (window id → slot
    left → slot moved to), whose notices are resumed if left unfinished. A finished or
    missed notice needs nothing; one left ``sending`` is resumed at once; a ``partial`` one
    (some channels sent by hand) sends the rest at its time, like a notice not yet begun.
    A start notice is still meaningful while the work is in progress, an end notice up to
    ``catch_up`` after the end; an advance notice or a reminder until half its lead time
    has passed (no "starts in 1 hour" 50 minutes late).
    """
    decisions = []
    for window in windows:
        if not window.broadcast:
            continue
        slot = active_slot(window, active_slots)
        for notice, at, meaningful_until in timeline(window, slot, catch_up):
            action = _action(notice_states.get(notice.key), at, meaningful_until, now)
            if action is not None:
                decisions.append(Decision(notice, at, action))
        decisions += _unfinished_postponements(window, (moves or {}).get(window.id, {}),
                                               notice_states, now)
    return decisions


def _unfinished_postponements(window: Window, moves: Mapping[str, str],
                              notice_states: Mapping[str, NoticeState], now: datetime
                              ) -> list[Decision]:
    """The postponed notices a sender left unfinished (a crash, a stop): resumed at once,
    each naming the slot its move went to, while that slot has not begun."""
    names = {s.name for s in window.slots}
    found = []
    for left, to in moves.items():
        state = notice_states.get(notice_key(window.id, left, Phase.POSTPONED.value))
        if state not in (NoticeState.SENDING, NoticeState.PARTIAL) or not {left, to} <= names:
            continue
        notice = build_notice(window, window.slot(left), Phase.POSTPONED, window.slot(to))
        action = _action(state, now, notice.window.slot(to).start, now)
        if action is not None:
            found.append(Decision(notice, now, action))
    return found


def timeline(window: Window, slot: Slot, catch_up: timedelta
             ) -> list[tuple[Notice, datetime, datetime]]:
    """Each notice of ``slot`` with its time and how long it stays worth sending: the
    start while the work lasts, the end ``catch_up`` after it, an advance notice or a
    reminder until half its lead has passed."""
    items = []
    for due in notice_times(window, slot):
        if due.phase is Phase.START:
            until = slot.end
        elif due.phase is Phase.END:
            until = slot.end + catch_up
        else:
            until = due.at + (slot.start - due.at) / 2
        items.append((build_notice(window, slot, due.phase, lead=due.lead), due.at, until))
    return items


def _action(state: NoticeState | None, at: datetime, meaningful_until: datetime, now: datetime
            ) -> Action | None:
    if state in (NoticeState.DONE, NoticeState.MISSED):
        return None
    if state == NoticeState.SENDING:
        return Action.SEND_NOW
    if now < at:
        return Action.SCHEDULE
    if now <= meaningful_until:
        return Action.SEND_NOW
    return Action.MISSED


def was_interrupted(notice_states: Mapping[str, NoticeState], window: Window,
                    slot: Slot) -> bool:
    """Whether the work in ``slot`` had started (its start notice is done or going out): a
    postponement then interrupts it (中断), and its end notice is never sent."""
    state = notice_states.get(notice_key(window.id, slot.name, Phase.START))
    return state in (NoticeState.DONE, NoticeState.SENDING, NoticeState.PARTIAL)
