"""The daemon's decisions on an injected clock: which notice when, catch-up, postponement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.errors import ArgumentError, StaleError
from dispatcher.ledger import NoticeState
from dispatcher.schedule import decide, was_interrupted
from dispatcher.table import Window, find_window, load_config, notice_key, postponement_target
from tests.helpers import ROOT, TOKYO

CATCH_UP = timedelta(minutes=30)
W3 = "2021-07-19-emoney"


def at(hour: int, minute: int = 0, day: int = 19, month: int = 7) -> datetime:
    return datetime(2021, month, day, hour, minute, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def windows() -> tuple[Window, ...]:
    return load_config(ROOT / "config.toml").windows


def summary(windows: tuple[Window, ...], now: datetime,
            states: dict[str, NoticeState] | None = None,
            active: dict[str, str] | None = None,
            phases: tuple[str, ...] = ("start", "end")) -> list[tuple[str, str, str, datetime]]:
    """The decisions about ``phases`` (by default the start and end notices)."""
    return [(d.slot.name, d.notice.tag, d.action.value, d.at)
            for d in decide(windows, active or {}, states or {}, now, CATCH_UP)
            if d.phase.value in phases]


BEFORE = ("announce", "reminder")


def test_before_the_window_both_notices_are_scheduled_and_only_for_broadcast(
        windows: tuple[Window, ...]) -> None:
    assert summary(windows, at(0)) == [("planned", "start", "schedule", at(1)),
                                       ("planned", "end", "schedule", at(2))]


def test_during_the_window_a_missing_start_notice_is_sent_now(
        windows: tuple[Window, ...]) -> None:
    assert summary(windows, at(1, 30)) == [("planned", "start", "send-now", at(1)),
                                           ("planned", "end", "schedule", at(2))]


def test_a_sent_notice_needs_nothing(windows: tuple[Window, ...]) -> None:
    states = {notice_key(W3, "planned", "start"): NoticeState.DONE}
    assert summary(windows, at(1, 30), states) == [("planned", "end", "schedule", at(2))]


def test_end_notice_catch_up_and_missed(windows: tuple[Window, ...]) -> None:
    done = {notice_key(W3, "planned", "start"): NoticeState.DONE}
    assert summary(windows, at(2, 30), done) == [("planned", "end", "send-now", at(2))]
    assert summary(windows, at(2, 31), done) == [("planned", "end", "missed", at(2))]
    assert summary(windows, at(2, 31)) == [("planned", "start", "missed", at(1)),
                                           ("planned", "end", "missed", at(2))]


def test_unfinished_notice_is_resumed_even_late(windows: tuple[Window, ...]) -> None:
    states = {notice_key(W3, "planned", "start"): NoticeState.DONE,
              notice_key(W3, "planned", "end"): NoticeState.SENDING}
    assert summary(windows, at(9), states) == [("planned", "end", "send-now", at(2))]


def test_missed_notices_are_not_decided_again(windows: tuple[Window, ...]) -> None:
    states = {notice_key(W3, "planned", "start"): NoticeState.MISSED,
              notice_key(W3, "planned", "end"): NoticeState.MISSED}
    assert summary(windows, at(9), states) == []


def test_postponed_window_follows_its_reserve_slot(windows: tuple[Window, ...]) -> None:
    states = {notice_key(W3, "planned", "start"): NoticeState.DONE}
    active = {W3: "reserve-2021-08-23-0100"}
    assert summary(windows, at(1, 30), states, active) == [
        ("reserve-2021-08-23-0100", "start", "schedule", at(1, month=8, day=23)),
        ("reserve-2021-08-23-0100", "end", "schedule", at(2, month=8, day=23))]


def test_times_in_other_zones_compare_as_instants(windows: tuple[Window, ...]) -> None:
    utc_now = at(0, 59).astimezone(ZoneInfo("UTC"))
    assert summary(windows, utc_now)[0] == ("planned", "start", "schedule", at(1))


def test_shipped_table_has_one_broadcast_window() -> None:
    config = load_config(Path(ROOT / "config.toml"))
    assert [w.number for w in config.windows if w.broadcast] == [3]


@pytest.mark.parametrize(("start_state", "interrupted"), [
    (None, False), (NoticeState.SENDING, True), (NoticeState.DONE, True),
    (NoticeState.MISSED, False),
])
def test_a_postponement_interrupts_the_work_once_its_start_notice_went_out(
        windows: tuple[Window, ...], start_state: NoticeState | None, interrupted: bool) -> None:
    window = find_window(windows, "3")
    states = {} if start_state is None else {notice_key(W3, "planned", "start"): start_state}
    assert was_interrupted(states, window, window.planned) is interrupted
    assert not was_interrupted(states, window, window.reserves[0])


def test_a_postponement_moves_forward_to_the_next_or_the_named_reserve(
        windows: tuple[Window, ...]) -> None:
    two_reserves = find_window(windows, "2")
    first, second = two_reserves.reserves
    before = datetime(2021, 5, 1, tzinfo=UTC)
    assert postponement_target(two_reserves, two_reserves.planned, None, before) == first
    assert postponement_target(two_reserves, two_reserves.planned, second.name,
                               before) == second
    assert second.name == "reserve-2021-07-04-2230"
    assert postponement_target(two_reserves, first, None, before) == second
    with pytest.raises(ArgumentError, match=f"it can only move forward, to {second.name}"):
        postponement_target(two_reserves, first, "planned", before)
    with pytest.raises(ArgumentError, match="already on its last slot"):
        postponement_target(two_reserves, second, None, before)


def test_a_postponement_never_moves_to_a_reserve_slot_that_has_begun_or_passed(
        windows: tuple[Window, ...]) -> None:
    two_reserves = find_window(windows, "2")
    first, second = two_reserves.reserves
    planned = two_reserves.planned
    with pytest.raises(StaleError, match=f"reserve slot {first.name} has begun: the next "
                       f"one still ahead is {second.name} \\(--to {second.name}\\)"):
        postponement_target(two_reserves, planned, None, first.start)
    with pytest.raises(StaleError, match=f"{first.name} has passed"):
        postponement_target(two_reserves, planned, first.name, first.end)
    assert postponement_target(two_reserves, planned, second.name, first.end) == second
    with pytest.raises(StaleError, match="no reserve slot is still ahead"):
        postponement_target(two_reserves, planned, second.name, second.end)


def test_the_advance_notice_and_the_reminders_come_before_the_start(
        windows: tuple[Window, ...]) -> None:
    assert summary(windows, at(0, day=1), phases=BEFORE) == [
        ("planned", "announce", "schedule", at(10, day=5)),  # business hours
        ("planned", "reminder-72h", "schedule", at(1, day=16)),
        ("planned", "reminder-24h", "schedule", at(1, day=18)),
        ("planned", "reminder-1h", "schedule", at(0))]
    reminders = {d.notice.tag: d.notice.channels
                 for d in decide(windows, {}, {}, at(0, day=1), CATCH_UP)}
    assert reminders["reminder-72h"] == ("fax",) and reminders["reminder-1h"] == ("sms",)
    assert reminders["announce"] == ("fax", "email", "sms")


def test_a_daemon_down_across_a_reminder_sends_it_only_before_half_its_lead(
        windows: tuple[Window, ...]) -> None:
    done = {notice_key(W3, "planned", tag): NoticeState.DONE
            for tag in ("announce", "reminder-72h", "reminder-24h")}
    assert summary(windows, at(0, 30), done, phases=BEFORE) == [
        ("planned", "reminder-1h", "send-now", at(0))]
    assert summary(windows, at(0, 31), done, phases=BEFORE) == [
        ("planned", "reminder-1h", "missed", at(0))]
    # 72 h ahead, 36 h is half: a reminder 30 h late still goes, 37 h late does not
    assert ("planned", "reminder-72h", "send-now", at(1, day=16)) in summary(
        windows, at(7, day=17), phases=BEFORE)
    assert ("planned", "reminder-72h", "missed", at(1, day=16)) in summary(
        windows, at(14, day=17), phases=BEFORE)


def test_a_postponement_drops_the_old_slots_reminders_and_arms_the_reserves(
        windows: tuple[Window, ...]) -> None:
    sent = {notice_key(W3, "planned", tag): NoticeState.DONE
            for tag in ("announce", "reminder-72h")}
    moved = {W3: "reserve-2021-08-23-0100"}
    # postponed on the 17th, before the 24 h and 1 h reminders of the planned slot
    assert summary(windows, at(9, day=17), sent, moved, phases=BEFORE) == [
        ("reserve-2021-08-23-0100", "reminder-72h", "schedule", at(1, month=8, day=20)),
        ("reserve-2021-08-23-0100", "reminder-24h", "schedule", at(1, month=8, day=22)),
        ("reserve-2021-08-23-0100", "reminder-1h", "schedule", at(0, month=8, day=23))]
    # postponed on the morning of the 22nd of August: the 72 h reminder is long past
    assert summary(windows, at(11, month=8, day=22), sent, moved, phases=BEFORE) == [
        ("reserve-2021-08-23-0100", "reminder-72h", "missed", at(1, month=8, day=20)),
        ("reserve-2021-08-23-0100", "reminder-24h", "send-now", at(1, month=8, day=22)),
        ("reserve-2021-08-23-0100", "reminder-1h", "schedule", at(0, month=8, day=23))]
