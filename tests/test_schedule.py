"""The daemon's decisions on an injected clock: which notice when, catch-up, postponement."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.errors import ArgumentError
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
            active: dict[str, str] | None = None) -> list[tuple[str, str, str, datetime]]:
    return [(d.slot.name, d.phase.value, d.action.value, d.at)
            for d in decide(windows, active or {}, states or {}, now, CATCH_UP)]


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
    active = {W3: "reserve-1"}
    assert summary(windows, at(1, 30), states, active) == [
        ("reserve-1", "start", "schedule", at(1, month=8, day=23)),
        ("reserve-1", "end", "schedule", at(2, month=8, day=23))]


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
    assert postponement_target(two_reserves, two_reserves.planned, None) == first
    assert postponement_target(two_reserves, two_reserves.planned, "reserve-2") == second
    assert postponement_target(two_reserves, first, None) == second
    with pytest.raises(ArgumentError, match="it can only move forward, to reserve-2"):
        postponement_target(two_reserves, first, "planned")
    with pytest.raises(ArgumentError, match="already on its last slot"):
        postponement_target(two_reserves, second, None)
