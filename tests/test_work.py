"""The work's real state on an injected clock: the end notice when the work is done, the
overrun notice when a confirmed end passes without `done`, each extension and update
once; the end in force follows the last extension."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.ledger import NoticeState
from dispatcher.schedule import Action, decide, next_notice
from dispatcher.table import (
    EndNotice,
    Report,
    Window,
    WorkReport,
    WorkState,
    find_window,
    load_config,
    notice_key,
    work_of,
)
from tests.helpers import ROOT, TOKYO

CATCH_UP = timedelta(minutes=30)
OVERRUN_AFTER = timedelta(minutes=1)
W3 = "2021-07-19-emoney"
WORK = ("end", "overrun", "extended", "update")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2021, 7, 19, hour, minute, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def window() -> Window:
    """Window 3, whose end notice waits for `done`."""
    shipped = find_window(load_config(ROOT / "config.toml").windows, "3")
    return replace(shipped, end_notice=EndNotice.CONFIRMED)


def report(kind: Report, made: datetime, until: datetime | None = None, number: int = 1,
           text: str = "") -> WorkReport:
    return WorkReport(W3, "planned", kind, number, made, until, text, "night-desk")


def work_decisions(window: Window, now: datetime, reports: list[WorkReport],
                   sent: tuple[str, ...] = ("start",)) -> list[tuple[str, str, datetime]]:
    states = {notice_key(W3, "planned", tag): NoticeState.DONE for tag in sent}
    decisions = decide([window], {}, states, now, CATCH_UP, {},
                       {(W3, "planned"): reports}, OVERRUN_AFTER)
    return [(d.notice.tag, d.action.value, d.at) for d in decisions
            if d.phase.value in WORK]


def test_a_confirmed_end_waits_for_done_and_the_overrun_goes_once_after_it(
        window: Window) -> None:
    assert work_decisions(window, at(1, 30), []) == [("overrun", "schedule", at(2, 1))]
    assert work_decisions(window, at(2, 1), []) == [("overrun", "send-now", at(2, 1))]
    assert work_decisions(window, at(2, 5), [], ("start", "overrun")) == []


def test_done_sends_the_end_notice_at_once_and_no_overrun_after_it(window: Window) -> None:
    done = report(Report.DONE, at(2, 20), at(2, 15))
    assert work_decisions(window, at(2, 20), [done], ("start", "overrun")) == [
        ("end", "send-now", at(2, 20))]
    early = report(Report.DONE, at(1, 50), at(1, 50))
    assert work_decisions(window, at(1, 50), [early]) == [("end", "send-now", at(1, 50))]
    assert work_decisions(window, at(2, 30), [early], ("start", "end")) == []


def test_an_end_an_operator_sent_before_done_and_died_at_is_resumed_at_once(
        window: Window) -> None:
    """The confirmed end is in no timeline before `done`, but one an operator sent by hand
    and whose sender died (left ``sending``) goes on at once on the channels the operator
    released (resumed: nothing more is released before `done`), as they meant; one
    the table no longer names (an update never reported) is left alone."""
    left = {notice_key(W3, "planned", "start"): NoticeState.DONE,
            notice_key(W3, "planned", "end"): NoticeState.SENDING,
            notice_key(W3, "planned", "update-3"): NoticeState.SENDING}
    decisions = decide([window], {}, left, at(1, 30), CATCH_UP, {}, {(W3, "planned"): []},
                       OVERRUN_AFTER)
    assert [(d.notice.tag, d.action.value, d.at) for d in decisions
            if d.phase.value in WORK] == [("overrun", "schedule", at(2, 1)),
                                          ("end", "resume", at(1, 30))]
    [end] = [d.notice for d in decisions if d.notice.tag == "end"]
    assert end.report is None and end.slot.end == at(2)  # the end as the operator sent it


def test_an_overrun_not_sent_before_done_is_recorded_missed(window: Window) -> None:
    done = report(Report.DONE, at(2, 20), at(2, 18))
    assert work_decisions(window, at(2, 21), [done]) == [("end", "send-now", at(2, 20)),
                                                         ("overrun", "missed", at(2, 1))]


def test_an_extension_moves_the_end_and_the_overrun_with_it(window: Window) -> None:
    extended = report(Report.EXTENDED, at(1, 40), at(2, 30))
    assert work_decisions(window, at(1, 40), [extended]) == [
        ("overrun", "schedule", at(2, 31)), ("extended-1", "send-now", at(1, 40))]
    scheduled = replace(window, end_notice=EndNotice.SCHEDULED)
    assert work_decisions(scheduled, at(2, 10), [extended], ("start", "extended-1")) == [
        ("end", "schedule", at(2, 30))]


def test_the_next_notice_shown_is_never_an_overrun_already_sent(window: Window) -> None:
    extended = report(Report.EXTENDED, at(2, 5), at(2, 30))
    work = work_of(window, window.planned, {(W3, "planned"): [extended]})
    coming = next_notice(window, window.planned, at(2, 6), work, OVERRUN_AFTER)
    assert coming is not None and (coming.phase.value, coming.at) == ("overrun", at(2, 31))
    overrun_went = {notice_key(W3, "planned", tag): NoticeState.DONE
                    for tag in ("start", "overrun", "extended-1")}
    assert next_notice(window, window.planned, at(2, 6), work, OVERRUN_AFTER,
                       overrun_went) is None  # the end waits for done; no second overrun


def test_each_update_goes_once_with_its_number(window: Window) -> None:
    first = report(Report.UPDATE, at(1, 30), text="順調です")
    second = report(Report.UPDATE, at(1, 45), number=2, text="まもなく終了します")
    assert work_decisions(window, at(1, 45), [first, second], ("start", "update-1")) == [
        ("overrun", "schedule", at(2, 1)), ("update-2", "send-now", at(1, 45))]


def test_the_state_shown_follows_the_reports(window: Window) -> None:
    slot = window.planned
    assert work_of(window, slot).state(at(0)) is WorkState.UPCOMING
    assert work_of(window, slot).state(at(1, 30)) is WorkState.IN_PROGRESS
    assert work_of(window, slot).state(at(2, 5)) is WorkState.OVERRUNNING
    reports = {(W3, "planned"): [report(Report.EXTENDED, at(2, 5), at(2, 30))]}
    assert work_of(window, slot, reports).state(at(2, 10)) is WorkState.EXTENDED
    assert work_of(window, slot, reports).end == at(2, 30)
    reports[(W3, "planned")].append(report(Report.DONE, at(2, 20), at(2, 18)))
    done = work_of(window, slot, reports)
    assert done.state(at(2, 20)) is WorkState.COMPLETED and done.ended_at == at(2, 18)
    scheduled = replace(window, end_notice=EndNotice.SCHEDULED)
    assert work_of(scheduled, slot).state(at(2, 5)) is WorkState.COMPLETED


minutes = st.integers(min_value=0, max_value=180)


@settings(max_examples=200, deadline=None)
@given(confirmed=st.booleans(), now=minutes, extensions=st.lists(minutes, max_size=3),
       done=st.one_of(st.none(), minutes), sent=st.sets(st.sampled_from(WORK)))
def test_no_end_before_done_when_confirmed_and_no_overrun_after_done(
        window: Window, confirmed: bool, now: int, extensions: list[int], done: int | None,
        sent: set[str]) -> None:
    """Whatever was reported and sent: a confirmed end never goes before `done`; an
    overrun is never scheduled or started once the work is done; nothing already done is
    decided again; the end goes no earlier than the end in force unless `done` said so."""
    base = at(1)
    chosen = replace(window, end_notice=EndNotice.CONFIRMED if confirmed
                     else EndNotice.SCHEDULED)
    reports = [report(Report.EXTENDED, base + timedelta(minutes=m),
                      base + timedelta(minutes=m + 30), number=i + 1)
               for i, m in enumerate(sorted(extensions))]
    if done is not None:
        reports.append(report(Report.DONE, base + timedelta(minutes=done),
                              base + timedelta(minutes=done)))
    clock = base + timedelta(minutes=now)
    reports = [r for r in reports if r.at <= clock]  # what was reported by now
    decided = work_decisions(chosen, clock, reports, ("start", *sent))
    tags = [tag for tag, _, _ in decided]
    assert len(tags) == len(set(tags))
    assert not set(tags) & sent
    work = work_of(chosen, chosen.planned, {(W3, "planned"): reports})
    for tag, action, when in decided:
        reported_done = work.done is not None
        if tag == "end":
            assert reported_done or not confirmed
            assert reported_done or when == work.end
        if tag == "overrun" and any(r.kind is Report.DONE for r in reports):
            assert action == Action.MISSED.value


def test_a_notice_left_sending_in_a_slot_the_window_left_is_resumed_to_end_it(
        window: Window) -> None:
    """A late report reopened the planned slot's start notice after the window moved to its
    reserve: it is resumed (its run reads that the window moved on, expires what is left
    and settles it) instead of staying `sending` for ever."""
    reserve = window.slots[1].name
    left = {notice_key(W3, "planned", "start"): NoticeState.SENDING,
            notice_key(W3, "planned", "postponed"): NoticeState.DONE}
    decisions = decide([window], {W3: reserve}, left, at(1, 30), CATCH_UP,
                       {W3: {"planned": reserve}}, {}, OVERRUN_AFTER)
    resumed = [(d.slot.name, d.notice.tag) for d in decisions if d.action is Action.RESUME]
    assert resumed == [("planned", "start")]
