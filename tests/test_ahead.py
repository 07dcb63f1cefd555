"""What `check` sees ahead: every notice the table will send from ``now`` with its time, a
broadcast window gone by with nothing sent (an error, or a warning to postpone while a
reserve slot is ahead), and advance notices or reminders that fall at night."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.ledger import NoticeState
from dispatcher.schedule import at_night, gone_by, notices_ahead
from dispatcher.table import Window, find_window, load_config
from tests.helpers import ROOT, TOKYO, Cli

CATCH_UP = timedelta(minutes=30)
W3 = "2021-07-19-emoney"
RESERVE = "reserve-2021-08-23-0100"


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2021, month, day, hour, minute, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def windows() -> tuple[Window, ...]:
    return load_config(ROOT / "config.toml").windows


def test_a_broadcast_window_gone_by_with_nothing_sent_is_an_error(
        windows: tuple[Window, ...]) -> None:
    errors, warnings = gone_by(windows, {}, {}, at(9, 1), TOKYO)
    [error] = errors
    assert (error.window.id, error.slot, error.key) == (W3, "planned", "start")
    assert "ended 2021-07-19 02:00+09:00 with no slot still ahead" in error.what
    assert warnings == []


def test_a_window_whose_night_took_place_is_history_not_a_mistake(
        windows: tuple[Window, ...]) -> None:
    for phase in ("start", "end"):
        for state in (NoticeState.DONE, NoticeState.PARTIAL, NoticeState.SENDING):
            assert gone_by(windows, {}, {f"{W3}/planned/{phase}": state}, at(9, 1),
                           TOKYO) == ([], [])
    missed = {f"{W3}/planned/start": NoticeState.MISSED}
    assert len(gone_by(windows, {}, missed, at(9, 1), TOKYO)[0]) == 1


def test_a_planned_slot_gone_by_with_a_reserve_ahead_is_a_warning_to_postpone(
        windows: tuple[Window, ...]) -> None:
    errors, [warning] = gone_by(windows, {}, {}, at(8, 1), TOKYO)
    assert errors == []
    assert warning.what.endswith(f"`dispatcher postpone 3` moves it to {RESERVE}")
    # once postponed there, the window is ahead again: nothing to say
    assert gone_by(windows, {W3: RESERVE}, {}, at(8, 1), TOKYO) == ([], [])
    # and the reserve slot gone by too: an error naming that slot
    [error], _ = gone_by(windows, {W3: RESERVE}, {}, at(9, 1), TOKYO)
    assert error.slot == RESERVE and f"reserve slot {RESERVE} ended" in error.what


def test_the_notices_ahead_are_the_daemons_decisions_in_order(
        windows: tuple[Window, ...]) -> None:
    ahead = notices_ahead(windows, {}, {}, at(7, 1, 9), CATCH_UP)
    assert [(a.notice.tag, a.at) for a in ahead] == [
        ("announce", at(7, 5, 10)), ("reminder-72h", at(7, 16, 1)),
        ("reminder-24h", at(7, 18, 1)), ("reminder-1h", at(7, 19, 0)),
        ("start", at(7, 19, 1)), ("end", at(7, 19, 2))]
    during = notices_ahead(windows, {}, {f"{W3}/planned/start": NoticeState.DONE},
                           at(7, 19, 1, 30), CATCH_UP)
    assert [(a.notice.tag, a.at) for a in during] == [("end", at(7, 19, 2))]
    late = notices_ahead(windows, {}, {}, at(7, 19, 1, 30), CATCH_UP)
    assert [(a.notice.tag, a.at) for a in late] == [("start", at(7, 19, 1, 30)),
                                                    ("end", at(7, 19, 2))]


@given(st.datetimes(min_value=datetime(2021, 5, 1), max_value=datetime(2021, 9, 30),
                    timezones=st.just(TOKYO)))
def test_nothing_ahead_is_before_now_and_a_window_in_error_has_nothing_ahead(
        now: datetime) -> None:
    windows = load_config(ROOT / "config.toml").windows
    ahead = notices_ahead(windows, {}, {}, now, CATCH_UP)
    assert all(a.at >= now for a in ahead)
    assert [a.at for a in ahead] == sorted(a.at for a in ahead)
    errors, warnings = gone_by(windows, {}, {}, now, TOKYO)
    erring = {e.window.id for e in errors}
    assert not erring & {a.notice.window.id for a in ahead if a.notice.tag == "start"}
    assert not erring & {w.window.id for w in warnings}


def test_advance_notices_and_reminders_at_night_are_one_warning_per_window(
        windows: tuple[Window, ...]) -> None:
    [night] = at_night(notices_ahead(windows, {}, {}, at(7, 1, 9), CATCH_UP), TOKYO)
    assert night.window.id == W3
    assert ("reminder-72h 2021-07-16 01:00+09:00, reminder-24h 2021-07-18 01:00+09:00, "
            "reminder-1h 2021-07-19 00:00+09:00 fall at night (21:00–08:00)") in night.what
    assert "announce" not in night.what  # at 10:00: in the day
    assert "reminders' leads" in night.what and "announce_at" not in night.what

    late_announce = tuple(replace(w, announce_at=time(21, 30, tzinfo=TOKYO))
                          for w in windows)
    [night] = at_night(notices_ahead(late_announce, {}, {}, at(7, 1, 9), CATCH_UP), TOKYO)
    assert "announce 2021-07-05 21:30+09:00" in night.what and "announce_at" in night.what

    day_only = find_window(windows, "3")
    in_the_day = replace(day_only, reminders=())
    assert at_night(notices_ahead((in_the_day,), {}, {}, at(7, 1, 9), CATCH_UP), TOKYO) == []


def test_check_without_a_readable_ledger_warns_of_a_window_gone_by(cli: Cli,
                                                                  project: Path) -> None:
    """Whether anything was sent is in the ledger: unread, a past window is a warning (with
    the ledger's own), not a refusal."""
    (project.parent / "var" / "ledger.sqlite3").mkdir(parents=True)  # not a database
    result = cli("check", "--json", "-c", str(project))
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["problems"] == []
    assert any("ended 2021-07-19 02:00+09:00 with no slot still ahead" in w
               for w in report["warnings"])
    assert any(w.startswith("the ledger could not be read") for w in report["warnings"])
