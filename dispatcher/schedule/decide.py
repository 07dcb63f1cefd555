"""Which notice goes out when: the daemon's decisions, from the table, the ledger and ``now``.

Pure: no I/O. The scheduler turns each decision into a job, a send now, or a log line;
it keeps no state of its own that the ledger does not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from dispatcher.errors import ArgumentError
from dispatcher.ledger import BEGUN_STATES, NoticeState
from dispatcher.table import (
    NextNotice,
    Notice,
    Phase,
    Report,
    Slot,
    Window,
    Work,
    WorkReports,
    active_slot,
    build_notice,
    notice_for_tag,
    notice_key,
    notice_times,
    work_of,
)

FOREVER = datetime.max.replace(tzinfo=UTC)  # worth sending until the work is reported done
JUST_BEFORE = timedelta(microseconds=1)


class Action(StrEnum):
    SCHEDULE = "schedule"    # a job at ``at``
    SEND_NOW = "send-now"    # due (late but still meaningful): release every channel at ``at``
    RESUME = "resume"        # left sending before its time: send what is released, no more
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
    reports: WorkReports | None = None,
    overrun_after: timedelta = timedelta(minutes=10),
    started: Mapping[str, datetime] | None = None,
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
    has passed (no "starts in 1 hour" 50 minutes late). ``reports`` (by window id and slot)
    are the operators' reports of the work: its end in force, whether it is done, the
    extensions and updates to tell of (see ``timeline``). ``started`` (by notice key) is
    when each notice that went out began sending: a notice that asks to confirm escalates
    ``after`` each of its window's steps from then, while it is worth sending.
    """
    decisions = []
    for window in windows:
        if not window.broadcast:
            continue
        slot = active_slot(window, active_slots)
        work = work_of(window, slot, reports)
        moved = (moves or {}).get(window.id, {})
        for notice, at, meaningful_until in timeline(window, slot, catch_up, work,
                                                     overrun_after):
            action = _action(notice_states.get(notice.key), at, meaningful_until, now)
            if action is not None:
                decisions.append(Decision(notice, at, action))
            decisions += escalations(notice, meaningful_until, notice_states, started, now, at)
        # a notice left sending that its timeline holds was decided above (send now)
        decided = {decision.key for decision in decisions}
        decisions += _left_sending(window, reports, notice_states, decided, now)
        for notice in _postponements(window, moved):
            if notice.new_slot is not None and notice.new_slot.name == slot.name:
                decisions += escalations(notice, notice.new_slot.start, notice_states,
                                         started, now)
        decisions += _unfinished_postponements(window, moved, notice_states, now)
    return decisions


def escalations(notice: Notice, meaningful_until: datetime,
                notice_states: Mapping[str, NoticeState],
                started: Mapping[str, datetime] | None, now: datetime,
                due: datetime | None = None) -> list[Decision]:
    """The escalations of ``notice`` (one that asks to confirm and went out) that still
    need work: each step ``after`` the notice was released on all its channels (and not
    before its own time, ``due``: a start notice sent by hand early calls nobody before
    the work starts), while it is worth sending."""
    released = (started or {}).get(notice.key)
    if released is None or not notice.window.confirms(notice.phase):
        return []
    began = max(released, due) if due is not None else released
    found = []
    for step in notice.window.steps:
        escalation = replace(notice, step=step)
        action = _action(notice_states.get(escalation.key), began + step.after,
                         meaningful_until, now)
        if action is not None:
            found.append(Decision(escalation, began + step.after, action))
    return found


def _left_sending(window: Window, reports: WorkReports | None,
                  notice_states: Mapping[str, NoticeState], decided: set[str], now: datetime
                  ) -> list[Decision]:
    """The notices of the window left ``sending`` that no timeline holds: the end an
    operator sent by hand before `done` under ``end_notice = "confirmed"``, or a notice of
    a slot the window has left that a late report reopened. Each is resumed at once on its
    released channels; what no longer matters expires as its run reads the night, and it
    settles (it stayed `sending` for ever). Postponed notices are resumed on their own."""
    found = []
    for slot in window.slots:
        prefix = notice_key(window.id, slot.name, "")
        work = work_of(window, slot, reports)
        for key, state in notice_states.items():
            if state != NoticeState.SENDING or key in decided or not key.startswith(prefix):
                continue
            tag = key.removeprefix(prefix)
            if tag == Phase.POSTPONED.value:
                continue
            try:
                notice = notice_for_tag(window, slot, tag, work)
            except ArgumentError:  # the table no longer names it
                continue
            found.append(Decision(notice, now, Action.RESUME))
    return found


def _postponements(window: Window, moves: Mapping[str, str]) -> list[Notice]:
    """The postponed notice of each move the window made (from the slot it left)."""
    names = {s.name for s in window.slots}
    return [build_notice(window, window.slot(left), Phase.POSTPONED, window.slot(to))
            for left, to in moves.items() if {left, to} <= names]


def _unfinished_postponements(window: Window, moves: Mapping[str, str],
                              notice_states: Mapping[str, NoticeState], now: datetime
                              ) -> list[Decision]:
    """The postponed notices a sender left unfinished (a crash, a stop): resumed at once,
    each naming the slot its move went to, while that slot has not begun. One a later
    postponement superseded is resumed too, and sends nothing: its deadline is read as
    the window moved on, and what is left of it expires."""
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


def timeline(window: Window, slot: Slot, catch_up: timedelta, work: Work | None = None,
             overrun_after: timedelta = timedelta(minutes=10)
             ) -> list[tuple[Notice, datetime, datetime]]:
    """Each notice of ``slot`` with its time and how long it stays worth sending: an
    advance notice or a reminder until half its lead has passed, the start while the work
    lasts, and the notices of the work's end (``end_notices``). The notices name the end
    in force (the last extension's)."""
    work = work or work_of(window, slot)
    in_force = replace(slot, end=work.end)
    items = []
    for due in notice_times(window, slot):
        if due.phase is Phase.END:
            continue
        until = work.end if due.phase is Phase.START else due.at + (slot.start - due.at) / 2
        items.append((build_notice(window, in_force, due.phase, lead=due.lead), due.at, until))
    return items + end_notices(window, in_force, work, catch_up, overrun_after)


def end_notices(window: Window, slot: Slot, work: Work, catch_up: timedelta,
                overrun_after: timedelta) -> list[tuple[Notice, datetime, datetime]]:
    """The end notice: once `done` is reported, or (``end_notice = "scheduled"``) at the
    end in force, worth sending ``catch_up`` after. With ``"confirmed"``, the overrun
    notice ``overrun_after`` past the end in force while the work is not done. Each
    extension and update as soon as it is reported: an extension until its new end, an
    update while the work lasts (and ``catch_up`` after it was made, in any case)."""
    done = work.done
    items = []
    if done is not None:  # `done`: the end notice; an interruption: the interrupted one
        phase = Phase.INTERRUPTED if done.kind is Report.INTERRUPTED else Phase.END
        items.append((build_notice(window, slot, phase, report=done), done.at,
                      done.at + catch_up))
    elif not work.confirmed:
        items.append((build_notice(window, slot, Phase.END), work.end, work.end + catch_up))
    overrun_at = work.overrun_at(overrun_after)
    if work.confirmed and (done is None or done.at >= overrun_at):
        # worth sending only before `done` (a sender cut off resumes it, as any other)
        items.append((build_notice(window, slot, Phase.OVERRUN), overrun_at,
                      done.at - JUST_BEFORE if done is not None else FOREVER))
    for report in work.extensions:
        items.append((build_notice(window, slot, Phase.EXTENDED, report=report), report.at,
                      report.until or report.at))
    over = work.over_at
    for report in work.updates:
        until = max(report.at, over) + catch_up if over is not None else FOREVER
        items.append((build_notice(window, slot, Phase.UPDATE, report=report), report.at,
                      until))
    return items


def next_notice(window: Window, slot: Slot, now: datetime, work: Work | None = None,
                overrun_after: timedelta = timedelta(minutes=10),
                notice_states: Mapping[str, NoticeState] | None = None) -> NextNotice | None:
    """The next notice a broadcast window sends at or after ``now`` in ``slot``, as its
    timeline has it (a confirmed end: the overrun notice, not the end), or None. A notice
    ``notice_states`` (by key) has done or missed is not sent again: the overrun notice
    goes once, even if an extension's end passes too."""
    if not window.broadcast:
        return None
    states = notice_states or {}
    upcoming = [(notice, at) for notice, at, _ in timeline(window, slot, timedelta(0), work,
                                                           overrun_after)
                if now <= at and states.get(notice.key) not in _SETTLED]
    if not upcoming:
        return None
    notice, at = min(upcoming, key=lambda item: item[1])
    return NextNotice(notice.phase, at, notice.lead)


_SETTLED = (NoticeState.DONE, NoticeState.MISSED)


def _action(state: NoticeState | None, at: datetime, meaningful_until: datetime, now: datetime
            ) -> Action | None:
    if state in _SETTLED:
        return None
    if state == NoticeState.SENDING:  # before its time, only what is released goes
        return Action.SEND_NOW if at <= now else Action.RESUME
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
    return state in BEGUN_STATES
