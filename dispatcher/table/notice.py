"""The one notice value: one phase of one window's slot, and the key that names it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dispatcher.errors import ArgumentError, InputError, single
from dispatcher.table.leads import lead_text, parse_lead
from dispatcher.table.windows import (
    NUMBERED_PHASES,
    Channel,
    EndNotice,
    Phase,
    Slot,
    Step,
    Window,
    active_slot,
    find_window,
    following_slot,
    notice_times,
)
from dispatcher.table.work import Report, Work, WorkReport, WorkReports, WorkState, work_of

STEP_MARK = "+"  # start+voice: the call-out of the start notice


@dataclass(frozen=True)
class Notice:
    """What is announced: one phase of one window's slot. Sent at most once; ``key`` names
    it in the ledger. ``new_slot`` is the slot a ``postponed`` notice moves the work to;
    ``lead`` how long before the start a ``reminder`` goes out; ``report`` the operator's
    report an ``extended``, ``update`` (or, after `done`, ``end``) notice carries. ``slot``
    ends at the end in force (an extension's)."""

    window: Window
    slot: Slot
    phase: Phase
    new_slot: Slot | None = None
    lead: timedelta | None = None
    report: WorkReport | None = None
    step: Step | None = None  # an escalation of the notice to those who did not confirm
    # a postponed notice: the work had started (中断: the interrupted notice's templates),
    # and why, as the operator said it ("" : the templates' own words)
    interrupted: bool = False
    reason: str = ""

    @property
    def tag(self) -> str:
        """The phase as the ledger names it: ``start``, ``reminder-1h`` for a reminder,
        ``extended-2`` for the second extension, ``start+voice`` for the call-out of the
        start notice."""
        if self.step is not None:
            return f"{self.base_tag}{STEP_MARK}{self.step.channel.value}"
        return self.base_tag

    @property
    def base_tag(self) -> str:
        """The tag of the notice itself, not of an escalation of it."""
        if self.phase in NUMBERED_PHASES and self.report is not None:
            return self.report.tag
        return phase_tag(self.phase, self.lead)

    @property
    def key(self) -> str:
        return notice_key(self.window.id, self.slot.name, self.tag)

    @property
    def base(self) -> Notice:
        """The notice an escalation escalates (itself if it is not one)."""
        return replace(self, step=None)

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels this notice goes out on: a reminder's are those with its lead, an
        update's those it was given, an escalation's its step's."""
        if self.step is not None:
            return (self.step.channel,)
        if self.phase is Phase.REMINDER and self.lead is not None:
            return self.window.reminder_channels(self.lead)
        if self.report is not None and self.report.channels:  # an update on some only
            return tuple(c for c in self.window.channels if c in self.report.channels)
        return self.window.channels


def phase_tag(phase: Phase, lead: timedelta | None = None) -> str:
    return f"{phase.value}-{lead_text(lead)}" if lead is not None else phase.value


def tag_phase(tag: str) -> Phase | None:
    """The phase a ledger tag names (``reminder-1h`` a reminder, ``start+voice`` the start
    notice's call-out); None if it names none."""
    name = tag.partition(STEP_MARK)[0].partition("-")[0]
    return Phase(name) if name in {p.value for p in Phase} else None


def asks_to_confirm(window: Window, tag: str) -> bool:
    """Whether the notice ``tag`` names asks its contacts to confirm (an escalation of one
    is not asked again: it counts for the notice it escalates)."""
    phase = tag_phase(tag)
    return phase is not None and STEP_MARK not in tag and window.confirms(phase)


def notice_key(window_id: str, slot: str, phase: str) -> str:
    """The ledger's unique name of a notice: ``2021-07-19-emoney/planned/start``."""
    return f"{window_id}/{slot}/{phase}"


def notice_tags(window: Window, work: Work | None = None) -> list[str]:
    """Every notice a window's slot can have, as the ledger names them, in time order:
    with its ``work``, each extension and update reported so far too."""
    reminders = [phase_tag(Phase.REMINDER, lead) for lead in window.reminder_leads]
    reported = sorted((*work.extensions, *work.updates), key=lambda r: r.at) if work else []
    overrun = [Phase.OVERRUN.value] if window.end_notice is EndNotice.CONFIRMED else []
    stopped = work is not None and work.done is not None and \
        work.done.kind is Report.INTERRUPTED
    return [Phase.ANNOUNCE.value, *reminders, Phase.START.value,
            *(r.tag for r in reported), *overrun,
            Phase.INTERRUPTED.value if stopped else Phase.END.value, Phase.POSTPONED.value]


def notice_for_tag(window: Window, slot: Slot, tag: str, work: Work | None = None) -> Notice:
    """The notice ``tag`` names (``start``, ``announce``, ``reminder-1h``, ``update-2``,
    ``start+voice``…) in ``slot``, whose ``work`` holds the reports the numbered ones tell
    of; ArgumentError if it names none."""
    tag, escalated, channel = tag.partition(STEP_MARK)
    if escalated:
        try:
            step = window.step(Channel(channel))
        except ValueError:
            raise single(ArgumentError, "notice", f"no channel {channel!r}") from None
        return replace(notice_for_tag(window, slot, tag, work), step=step)
    phase_text, _, rest = tag.partition("-")
    try:
        phase = Phase(phase_text)
        if phase in NUMBERED_PHASES:
            return _reported_notice(window, slot, phase, int(rest), work)
        return build_notice(window, replace(slot, end=work.end) if work else slot, phase,
                            lead=parse_lead(rest) if phase is Phase.REMINDER else None,
                            report=work.done if work and phase in _ENDING_PHASES else None)
    except ValueError:
        raise single(ArgumentError, "notice", f"no notice {tag!r}") from None


def notice_named(windows: Sequence[Window], window_id: str, slot_name: str, tag: str,
                 reports: WorkReports | None = None) -> Notice | None:
    """The notice the ledger names (window id, slot, tag) in the table ``windows``, in its
    work as ``reports`` tell it; None if the table no longer has it."""
    try:
        window = find_window(windows, window_id)
        slot = window.slot(slot_name)
        return notice_for_tag(window, slot, tag, work_of(window, slot, reports))
    except InputError:
        return None


def _reported_notice(window: Window, slot: Slot, phase: Phase, number: int,
                     work: Work | None) -> Notice:
    made = (work.extensions if phase is Phase.EXTENDED else work.updates) if work else ()
    report = next((r for r in made if r.number == number), None)
    if report is None:
        raise ValueError(f"no {phase.value}-{number}")
    end = report.until if phase is Phase.EXTENDED and report.until else (
        work.end if work else slot.end)
    return build_notice(window, replace(slot, end=end), phase, report=report)


def build_notice(window: Window, slot: Slot, phase: Phase, new_slot: Slot | None = None,
                 lead: timedelta | None = None, report: WorkReport | None = None) -> Notice:
    """The notice of ``phase`` for ``slot``; a postponed notice names ``new_slot``, by
    default the next reserve slot; a reminder needs one of the window's ``lead`` times; an
    extended or update notice the ``report`` it tells of."""
    if phase is Phase.REMINDER:
        return Notice(window, slot, phase, lead=_reminder_lead(window, lead))
    if phase in NUMBERED_PHASES and report is None:
        raise single(ArgumentError, "PHASE", f"a{'n' * (phase is Phase.EXTENDED)} "
                     f"{phase.value} notice is sent by `dispatcher {REPORT_COMMAND[phase]}`")
    if phase in NUMBERED_PHASES or phase is Phase.END:
        return Notice(window, slot, phase, report=report)
    if phase is Phase.INTERRUPTED:  # no date yet: the reason the operator gave
        return Notice(window, slot, phase, report=report, interrupted=True,
                      reason=report.text if report is not None else "")
    if phase is not Phase.POSTPONED:
        return Notice(window, slot, phase)
    new_slot = new_slot or following_slot(window, slot)
    if new_slot is None:
        raise single(ArgumentError, f"window {window.number}",
                     f"no reserve slot after {slot.name} to postpone to")
    return Notice(window, slot, phase, new_slot)


def possible_notices(window: Window) -> list[Notice]:
    """The notices a window can send, in its planned slot: those of its timeline (the
    advance notice, each reminder, start and end), postponed if it has a reserve slot, and
    those of the work's reports: the end after `done`, an extension, an update (with a
    sample text: `update` checks the real one) and, with ``end_notice = "confirmed"``, the
    overrun notice."""
    slot = window.planned
    notices = [build_notice(window, slot, due.phase, lead=due.lead)
               for due in notice_times(window, slot)]
    postponed = build_notice(window, slot, Phase.POSTPONED) if window.reserves else None
    moved = [] if postponed is None else [  # with and without the operator's reason
        replace(postponed, interrupted=interrupted, reason=reason)
        for interrupted in (False, True) for reason in ("", SAMPLE_REASON)]
    return notices + moved + _report_notices(window, slot)


SAMPLE_UPDATE = "作業は順調に進んでおります。"
SAMPLE_REASON = "前提作業の遅延のため"  # what `check` renders a postponement's reason with


def _report_notices(window: Window, slot: Slot) -> list[Notice]:
    def report(kind: Report, until: datetime | None, text: str = "") -> WorkReport:
        return WorkReport(window.id, slot.name, kind, 1, slot.start, until, text, "check")

    later = slot.end + timedelta(minutes=30)
    notices = [
        build_notice(window, slot, Phase.END, report=report(Report.DONE, slot.end)),
        *(build_notice(window, slot, Phase.INTERRUPTED,
                       report=report(Report.INTERRUPTED, slot.start, reason))
          for reason in ("", SAMPLE_REASON)),
        build_notice(window, replace(slot, end=later), Phase.EXTENDED,
                     report=report(Report.EXTENDED, later)),
        build_notice(window, slot, Phase.UPDATE,
                     report=report(Report.UPDATE, None, SAMPLE_UPDATE)),
    ]
    if window.end_notice is EndNotice.CONFIRMED:
        notices.append(build_notice(window, slot, Phase.OVERRUN))
    return notices


def notice_in_work(window: Window, work: Work, phase: Phase, lead: timedelta | None,
                   sent_at: datetime, text: str | None, until: datetime | None) -> Notice:
    """The notice ``phase`` would be, sent at ``sent_at`` in the work as reported: an update
    with ``text`` and an extension to ``until`` as the next of their kind, the end notice
    after `done` naming when the work ended."""
    slot = replace(work.slot, end=work.end)
    if phase is Phase.UPDATE or phase is Phase.EXTENDED:
        given = text if phase is Phase.UPDATE else until
        if not given:
            option = "--text" if phase is Phase.UPDATE else "--until"
            raise single(ArgumentError, option, f"a preview of the {phase.value} notice "
                         f"needs {option}, as `dispatcher {REPORT_COMMAND[phase]}` does")
        kind = Report(phase.value)
        report = WorkReport(window.id, slot.name, kind, work.next_number(kind), sent_at,
                            until if phase is Phase.EXTENDED else None,
                            (text or "").strip(), "preview")
        return build_notice(window, replace(slot, end=until) if until else slot, phase,
                            report=report)
    return build_notice(window, slot, phase, lead=lead,
                        report=work.done if phase in _ENDING_PHASES else None)


_ENDING_PHASES = (Phase.END, Phase.INTERRUPTED)  # the notices of `done` and of an interruption


# the command that makes each numbered notice's report
REPORT_COMMAND = {Phase.EXTENDED: "extend", Phase.UPDATE: "update"}


def _reminder_lead(window: Window, lead: timedelta | None) -> timedelta:
    leads = window.reminder_leads
    known = ", ".join(lead_text(t) for t in leads) or "none: see [reminders]"
    if lead is None:
        raise single(ArgumentError, "--lead", f"which reminder of window {window.number}? "
                                              f"Give --lead (it has {known})")
    if lead not in leads:
        raise single(ArgumentError, "--lead", f"window {window.number} has no {lead_text(lead)}"
                                              f" reminder (it has {known})")
    return lead


@dataclass(frozen=True)
class Overrun:
    """The work of ``window`` in ``slot`` went past an end in force without `done`: the
    table's end (``extensions`` 0), or the end of its last extension."""

    window: Window
    slot: Slot
    due_end: datetime
    extensions: int

    @property
    def key(self) -> str:
        """Names this overrun once (an alert, a log line): ``w/planned/overrun``, then
        ``w/planned/overrun/extended-1`` for the end the first extension gave."""
        base = notice_key(self.window.id, self.slot.name, Phase.OVERRUN)
        return f"{base}/extended-{self.extensions}" if self.extensions else base


def overruns(windows: Iterable[Window], active: Mapping[str, str], reports: WorkReports,
             after: timedelta, now: datetime) -> list[Overrun]:
    """Each work (of a window whose end waits for `done`) whose end in force passed
    ``after`` ago without `done`, as of ``now``."""
    found = []
    for window in windows:
        slot = active_slot(window, active)
        work = work_of(window, slot, reports)
        if work.state(now) is WorkState.OVERRUNNING and now >= work.overrun_at(after):
            found.append(Overrun(window, slot, work.due_end, len(work.extensions)))
    return found
