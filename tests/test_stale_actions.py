"""Operator actions carry what the operator saw: a postponement its from-slot, a send or a
retry its slot. A stale one is refused (exit 2, 409 in the console), never applied to
something else. A postponed notice left unfinished is resumed, naming the slot it moved to."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.errors import StaleError
from dispatcher.ledger import Ledger, NoticeState
from tests.helpers import (
    BEFORE_EVERY_WINDOW,
    LEDGER_T0,
    WINDOW_3,
    Cli,
    HttpClient,
    console_server,
    deliveries,
    planned_notice,
    project_ledger,
    run_daemon_at,
)

RESERVE = "reserve-2021-08-23-0100"
BEFORE_THE_NIGHT = datetime(2021, 7, 18, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def early(cli_at: Callable[[datetime], None]) -> None:
    """The commands run before the seed's first window: every reserve slot is ahead."""
    cli_at(BEFORE_EVERY_WINDOW)


async def test_two_postponements_of_the_same_view_move_the_window_once(ledger: Ledger
                                                                      ) -> None:
    moves = await asyncio.gather(
        *(ledger.move_window("w3", "planned", target, "operator:a", "", LEDGER_T0)
          for target in ("r1", "r2")), return_exceptions=True)
    refused = [m for m in moves if isinstance(m, StaleError)]
    assert len(refused) == 1 and moves.count(None) == 1
    assert (await ledger.active_slots())["w3"] in ("r1", "r2")
    assert len((await ledger.slot_moves())["w3"]) == 1


async def test_a_postponement_from_a_slot_the_window_left_is_refused(ledger: Ledger) -> None:
    await ledger.move_window("w3", "planned", "r1", "operator:a", "", LEDGER_T0)
    with pytest.raises(StaleError, match="no longer on planned: it is on r1 now"):
        await ledger.move_window("w3", "planned", "r2", "operator:b", "", LEDGER_T0)
    assert await ledger.active_slots() == {"w3": "r1"}


def test_a_second_postpone_of_what_was_seen_is_refused_and_sends_once(
        cli: Cli, project: Path) -> None:
    first = cli("postpone", "3", "--from", "planned", "--yes", "-c", str(project))
    assert first.code == 0, first.err
    again = cli("postpone", "3", "--from", "planned", "--yes", "-c", str(project))
    assert again.code == 2
    assert "window 3 is on reserve-2021-08-23-0100 now, not planned" in again.err
    assert "Traceback" not in again.err
    postponed = [d for d in asyncio.run(deliveries(project)) if d.channel == "email"]
    assert len(postponed) == 28  # one postponed notice, not two


def test_a_send_or_retry_for_the_slot_the_window_left_is_refused(cli: Cli, project: Path
                                                                 ) -> None:
    assert cli("postpone", "3", "--no-notice", "--yes", "-c", str(project)).code == 0
    for command in (("send", "3", "start", "--yes"), ("retry", "3", "start")):
        result = cli(*command, "--slot", "planned", "-c", str(project))
        assert result.code == 2, command
        assert "is on reserve-2021-08-23-0100 now, not planned" in result.err
    assert asyncio.run(deliveries(project)) == []
    sent = cli("send", "3", "start", "--slot", RESERVE, "--channel", "email", "--yes",
               "-c", str(project))
    assert sent.code == 0, sent.err


def test_retrying_the_postponed_notice_retries_the_one_that_was_sent(
        cli: Cli, project: Path) -> None:
    assert cli("postpone", "3", "--yes", "-c", str(project)).code == 0
    retried = cli("retry", "3", "postponed", "-c", str(project))
    assert retried.code == 0, retried.err
    assert "notice 2021-07-19-emoney planned postponed: done" in retried.out


async def test_a_postponed_notice_left_sending_is_resumed_naming_the_new_slot(
        cli: Cli, project: Path) -> None:
    moved = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes", "-c",
                                    str(project))
    assert moved.code == 0, moved.err
    async with project_ledger(project) as ledger:  # as a sender that died left it
        await planned_notice(ledger, "postponed", [], BEFORE_THE_NIGHT, "operator:a",
                             WINDOW_3)
    await run_daemon_at(project, BEFORE_THE_NIGHT)
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", "postponed")
    assert record is not None and record.state == NoticeState.DONE
    sms = project.parent / "var" / "outbox" / "sms" / f"{WINDOW_3}_planned_postponed"
    texts = [p.read_text(encoding="utf-8") for p in sms.glob("*.txt")]
    assert len(texts) == 26 and all("8/23" in text for text in texts)


def test_the_console_refuses_a_send_or_postpone_made_on_a_view_that_moved(
        cli: Cli, project: Path) -> None:
    with console_server(project) as port:
        desk = HttpClient(port)
        assert desk.login() == 303
        _, _, page = desk.request("GET", "/windows/3/notices/start")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf and 'name="slot" value="planned"' in page
        assert 'name="from" value="planned"' in page
        moved = cli("postpone", "3", "--no-notice", "--yes", "-c", str(project))
        assert moved.code == 0, moved.err
        form = {"csrf": csrf.group(1), "confirm": WINDOW_3, "slot": "planned"}
        status, _, body = desk.request("POST", "/windows/3/notices/start/send", form)
        assert status == 409 and RESERVE in body
        postpone = {"csrf": csrf.group(1), "confirm": WINDOW_3, "from": "planned",
                    "back": "/windows/3/notices/start"}
        status, _, body = desk.request("POST", "/windows/3/postpone", postpone)
        assert status == 409 and "not planned" in body
        # a page of the console, in Japanese, with the way back to where the operator was
        assert "延期は反映されていません" in body and "何も変更していません" in body
        assert '<a href="/windows/3/notices/start">元の画面に戻って' in body
        assert "ログアウト" in body
    assert asyncio.run(deliveries(project)) == []


def test_the_postponed_notice_previewed_after_a_move_is_the_one_that_was_sent(
        cli: Cli, project: Path) -> None:
    assert cli("postpone", "3", "--no-notice", "--yes", "-c", str(project)).code == 0
    shown = cli("preview", "3", "postponed", "--channel", "sms", "--contact", "M0001",
                "-c", str(project))
    assert shown.code == 0, shown.err
    assert "window 3 (2021-07-19-emoney), postponed, planned:" in shown.out
    assert "7/19(月)のメンテナンスは予備日 8/23(月) AM1:00～AM2:00 に実施します" in shown.out
