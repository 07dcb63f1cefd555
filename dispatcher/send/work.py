"""What an operator reports of the work, by hand (from the command line or the console):
`done` (作業完了), `extend` (延長), `update` (経過報告), and an interruption that does not
move the window yet (`postpone --no-move`, 中断). Each is checked first (its
notice rendered for every contact: nothing is recorded if one fails), recorded on the view
it was made from (compare and set: a stale view is refused), audited, and its notice sent
like any other. Nothing here prints or asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from dispatcher.clock import Clock
from dispatcher.errors import ArgumentError, Problem, StaleError, TemplateError, single
from dispatcher.ledger import BEGUN_STATES, Ledger, NoticeState
from dispatcher.render import summarise_too_long
from dispatcher.send.session import preflight
from dispatcher.table import (
    Channel,
    Inputs,
    Notice,
    Phase,
    Report,
    Slot,
    Window,
    Work,
    WorkReport,
    active_slot,
    build_notice,
    jp_datetime,
    notice_key,
    work_of,
)


@dataclass(frozen=True)
class WorkAction:
    """A report of the work, checked (its notice rendered for every contact of the
    audience) but not yet recorded."""

    report: WorkReport
    notice: Notice
    channels: list[Channel]


@dataclass(frozen=True)
class WorkView:
    """A window's work as an operator sees it before reporting: the slot in force, what
    was reported, and the notices' states (by key)."""

    window: Window
    slot: Slot
    work: Work
    states: Mapping[str, NoticeState]

    @property
    def reports_seen(self) -> int:
        """How many reports of the slot the operator saw."""
        work = self.work
        return len(work.extensions) + len(work.updates) + (work.done is not None)

    def state_of(self, tag: str) -> NoticeState | None:
        return self.states.get(notice_key(self.window.id, self.slot.name, tag))


async def work_view(ledger: Ledger, window: Window) -> WorkView:
    slot = active_slot(window, await ledger.active_slots())
    return WorkView(window, slot, work_of(window, slot, await ledger.work_reports()),
                    await ledger.notice_states())


def plan_done(inputs: Inputs, view: WorkView, ended: datetime | None, actor: str,
              clock: Clock) -> WorkAction:
    """The work is over (at ``ended``, by default now): its end notice goes out now.
    Refused before the start notice went, or once the end notice was sent."""
    now = clock()
    _require_started(view, "reported done")
    ended = ended or now
    if not view.slot.start <= ended <= now:
        raise single(ArgumentError, "--at", f"the work of window {view.window.number} can "
                     f"only have ended between its start and now, not at {_local(inputs, ended)}")
    report = WorkReport(view.window.id, view.slot.name, Report.DONE, 1, now, ended, "", actor,
                        seen=view.reports_seen)
    return _planned(inputs, view, report, Phase.END, ended, now)


def plan_interruption(inputs: Inputs, view: WorkView, reason: str, actor: str,
                      clock: Clock) -> WorkAction:
    """The work was stopped now (中断) and the window stays on its slot until a reserve date
    is chosen (`postpone`): the interrupted notice goes out now (stopped, why, service back,
    the new date to come), and the slot's end notice never. Refused before the start
    notice went (nothing to interrupt: postpone it), or once the work is over."""
    now = clock()
    _require_started(view, "interrupted")
    report = WorkReport(view.window.id, view.slot.name, Report.INTERRUPTED, 1, now, now,
                        reason.strip(), actor, seen=view.reports_seen)
    return _planned(inputs, view, report, Phase.INTERRUPTED, now, now)


def plan_extension(inputs: Inputs, view: WorkView, until: datetime, reason: str, actor: str,
                   clock: Clock, seen_end: datetime | None = None) -> WorkAction:
    """The work's end moves to ``until`` (later than the end in force, and than now): the
    extended notice names it, and the end (or overrun) is armed again at it.
    ``seen_end``: the end the operator saw, which must still be in force (StaleError)."""
    now = clock()
    _require_open(view, "extended")
    if seen_end is not None and seen_end != view.work.end:
        raise StaleError([Problem("--until", f"window {view.window.number} now ends at "
                                  f"{_local(inputs, view.work.end)}, not "
                                  f"{_local(inputs, seen_end)}: look again")])
    if until <= max(view.work.end, now):
        raise single(ArgumentError, "--until", f"an extension of window {view.window.number} "
                     f"ends after {_local(inputs, max(view.work.end, now))} (its end in "
                     f"force, or now), not at {_local(inputs, until)}")
    report = WorkReport(view.window.id, view.slot.name, Report.EXTENDED,
                        view.work.next_number(Report.EXTENDED), now, until, reason, actor,
                        seen=view.reports_seen)
    return _planned(inputs, view, report, Phase.EXTENDED, until, now)


def plan_update(inputs: Inputs, view: WorkView, text: str, only: list[Channel] | None,
                actor: str, clock: Clock, seen_updates: int | None = None) -> WorkAction:
    """A progress report in the operator's words, to the window's audience on its channels
    (or ``only`` some of them). ``seen_updates``: how many the operator saw (StaleError if
    another was made since: a form sent twice does not send two)."""
    now = clock()
    _require_open(view, "given an update")
    text = text.strip()
    if not text:
        raise single(ArgumentError, "--text", "an update needs its text")
    made = len(view.work.updates)
    if seen_updates is not None and seen_updates != made:
        raise StaleError([Problem("WINDOW", f"window {view.window.number} has {made} update(s) "
                                  f"now, not {seen_updates}: look again")])
    unknown = [c.value for c in only or () if c not in view.window.channels]
    if unknown:
        raise single(ArgumentError, "--channel", f"window {view.window.number} does not "
                     f"send on {', '.join(unknown)} (its channels: "
                     f"{', '.join(view.window.channels)})")
    report = WorkReport(view.window.id, view.slot.name, Report.UPDATE, made + 1, now, None,
                        text, actor, tuple(dict.fromkeys(only or ())), view.reports_seen)
    try:
        return _planned(inputs, view, report, Phase.UPDATE, view.work.end, now)
    except TemplateError as exc:  # one line for the operator, not one per contact
        raise TemplateError(summarise_too_long(exc.problems, "--text")) from None


async def carry_out_report(ledger: Ledger, action: WorkAction, clock: Clock) -> None:
    """Record the report, if the work is still as the plan saw it (StaleError if not), and
    write it to the audit log."""
    report = action.report
    await ledger.record_report(report)
    detail: dict[str, object] = {"slot": report.slot, "number": report.number}
    if report.until is not None:
        detail["until" if report.kind is Report.EXTENDED else "ended_at"] = (
            report.until.isoformat())
    if report.text:
        detail["text" if report.kind is Report.UPDATE else "reason"] = report.text
    await ledger.audit(report.actor, report.kind.value, report.window_id, detail, clock())


def _planned(inputs: Inputs, view: WorkView, report: WorkReport, phase: Phase,
             end: datetime, now: datetime) -> WorkAction:
    notice = build_notice(view.window, replace(view.slot, end=end), phase, report=report)
    channels = list(notice.channels) if view.window.broadcast else []
    preflight(inputs, notice, channels, now)
    return WorkAction(report, notice, channels)


def _require_started(view: WorkView, what: str) -> None:
    window = view.window
    if view.state_of(Phase.START.value) not in BEGUN_STATES:
        raise single(ArgumentError, "WINDOW", f"window {window.number}'s work has not started "
                     f"in {view.slot.name} (its start notice was not sent): it cannot be {what}")
    _require_open(view, what)


def _require_open(view: WorkView, what: str) -> None:
    window = view.window
    done = view.work.done
    if done is not None:
        how = "interrupted (中断)" if done.kind is Report.INTERRUPTED else "reported done"
        raise single(ArgumentError, "WINDOW", f"window {window.number}'s work in "
                     f"{view.slot.name} was {how}: it cannot be {what}")
    if view.state_of(Phase.END.value) is not None:
        raise single(ArgumentError, "WINDOW", f"window {window.number}'s end notice for "
                     f"{view.slot.name} was already sent: it cannot be {what}")


def _local(inputs: Inputs, moment: datetime) -> str:
    return jp_datetime(moment.astimezone(inputs.config.settings.timezone))
