"""`dispatcher postpone`: the move is recorded, the table follows, the postponed notice goes out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from dispatcher.ledger import NoticeState
from dispatcher.send import carry_out_postponement, plan_postponement
from dispatcher.table import find_window, load_inputs
from tests.helpers import WINDOW_3, Cli, project_ledger, run_daemon_at

BEFORE_THE_NIGHT = datetime(2021, 7, 18, 12, 0, tzinfo=UTC)


def active_slot(cli: Cli, project: Path, number: int) -> str:
    rows = json.loads(cli("windows", "--json", "-c", str(project)).out)
    slot: str = rows[number - 1]["active_slot"]
    return slot


async def audit(project: Path) -> list[dict[str, object]]:
    async with project_ledger(project) as ledger:
        return await ledger.audit_entries()


def test_postpone_moves_the_window_and_sends_the_postponed_notice(cli: Cli,
                                                                   project: Path) -> None:
    result = cli("postpone", "3", "--reason", "機器不具合", "--yes", "-c", str(project))
    assert result.code == 0, result.err
    assert active_slot(cli, project, 3) == "reserve-2021-08-23-0100"
    sms = project.parent / "var" / "outbox" / "sms" / "2021-07-19-emoney_planned_postponed"
    texts = [p.read_text(encoding="utf-8") for p in sms.glob("*.txt")]
    assert len(texts) == 26 and all("予備日 8/23(月) AM1:00～AM2:00" in t for t in texts)
    [entry] = asyncio.run(audit(project))
    assert entry["action"] == "postpone"
    assert entry["detail"] == {"from": "planned", "to": "reserve-2021-08-23-0100",
                               "reason": "機器不具合", "notice": True}


def test_postpone_after_the_start_notice_is_an_interruption(cli: Cli, project: Path) -> None:
    assert cli("send", "3", "start", "--channel", "sms", "--yes", "-c", str(project)).code == 0
    result = cli("postpone", "3", "--no-notice", "--yes", "-c", str(project))
    assert result.code == 0
    assert "interrupted (中断): its end notice will not be sent" in result.out
    rows = json.loads(cli("windows", "--json", "--now", "2021-07-19T01:30:00",
                          "-c", str(project)).out)
    assert rows[2]["active_slot"] == "reserve-2021-08-23-0100"
    assert rows[2]["next_notice"] == {"phase": "reminder", "lead": "72h",
                                      "at": "2021-08-20T01:00:00+09:00"}
    assert rows[2]["notices"] == {}
    assert not (project.parent / "var" / "outbox" / "sms" /
                "2021-07-19-emoney_planned_postponed").exists()


def test_postpone_past_the_last_reserve_slot_is_an_error(cli: Cli, project: Path) -> None:
    assert cli("postpone", "1", "--yes", "-c", str(project)).code == 0
    result = cli("postpone", "1", "--yes", "-c", str(project))
    assert result.code == 2
    assert "window 1 is already on its last slot (reserve-2021-06-13-2230)" in result.err


def test_postpone_to_a_named_slot_and_never_backwards(cli: Cli, project: Path) -> None:
    moved = cli("postpone", "2", "--to", "reserve-2021-07-04-2230", "--yes", "-c", str(project))
    assert moved.code == 0, moved.err
    assert active_slot(cli, project, 2) == "reserve-2021-07-04-2230"
    result = cli("postpone", "2", "--to", "reserve-2021-06-30-2230", "--yes", "-c", str(project))
    assert result.code == 2 and "it can only move forward, to no slot" in result.err
    unknown = cli("postpone", "2", "--to", "reserve-9", "--yes", "-c", str(project))
    assert unknown.code == 2 and "no slot 'reserve-9'" in unknown.err


def test_postpone_without_a_terminal_needs_yes(cli: Cli, project: Path) -> None:
    result = cli("postpone", "3", "-c", str(project))
    assert result.code == 2 and "add --yes" in result.err
    assert active_slot(cli, project, 3) == "planned"


async def test_a_sender_killed_between_the_move_and_its_notice_loses_nothing(
        project: Path) -> None:
    """The move and its postponed notice are one transaction: killed right after it (no
    delivery planned yet), the daemon's next look sends the postponed notice, naming the
    reserve date (it used to be lost: the window moved, nobody was told)."""
    clock = lambda: BEFORE_THE_NIGHT  # noqa: E731
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    async with project_ledger(project) as ledger:
        plan = plan_postponement(inputs, window, await ledger.active_slots(), None, True,
                                 clock)
        await carry_out_postponement(ledger, plan, "a", "前提作業の遅延のため", clock)
        record = await ledger.notice(window.id, "planned", "postponed")
        assert record is not None and record.state == NoticeState.SENDING
    await run_daemon_at(project, BEFORE_THE_NIGHT)
    texts = list((project.parent / "var" / "outbox" / "sms" /
                  f"{WINDOW_3}_planned_postponed").glob("*.txt"))
    assert texts and all("8/23" in t.read_text(encoding="utf-8") for t in texts)
