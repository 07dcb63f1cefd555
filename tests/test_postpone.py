"""`dispatcher postpone`: the move is recorded, the table follows, the postponed notice goes out."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.ledger import NoticeState
from dispatcher.render import readable
from dispatcher.send import carry_out_postponement, plan_postponement
from dispatcher.table import find_window, load_inputs
from tests.helpers import (
    BEFORE_EVERY_WINDOW,
    WINDOW_3,
    Cli,
    planned_notice,
    project_ledger,
    run_daemon_at,
)

BEFORE_THE_NIGHT = datetime(2021, 7, 18, 12, 0, tzinfo=UTC)
DURING_THE_WORK = datetime(2021, 7, 18, 16, 30, tzinfo=UTC)  # 7/19 AM1:30 in Tokyo


@pytest.fixture(autouse=True)
def early(cli_at: Callable[[datetime], None]) -> None:
    """The commands run before the seed's first window: every reserve slot is ahead."""
    cli_at(BEFORE_EVERY_WINDOW)


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


def test_postpone_after_the_start_notice_is_an_interruption(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    cli_at(DURING_THE_WORK)
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


def test_postpone_during_the_work_sends_the_interrupted_notice_with_the_reason(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    """中断: after the start notice, the merchants hear on every channel that the work was
    stopped, why (the operator's reason), that service is back now, and the reserve date;
    not the text of a postponement before the start."""
    cli_at(DURING_THE_WORK)
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    result = cli("postpone", "3", "--reason", "前提作業の遅延のため", "--yes", "-c",
                 str(project))
    assert result.code == 0, result.err
    assert "interrupted (中断)" in result.out
    outbox = project.parent / "var" / "outbox"
    folder = f"{WINDOW_3}_planned_postponed"
    texts = [p.read_text(encoding="utf-8") for p in (outbox / "sms" / folder).glob("*.txt")]
    assert len(texts) == 26 and all("作業を中断しました。現在は通常通りご利用いただけます。"
                                    "予備日 8/23(月) AM1:00～AM2:00 に再実施します" in t
                                    for t in texts)
    mails = [readable(p.read_bytes()) for p in (outbox / "email" / folder).glob("*.eml")]
    assert len(mails) == 28
    for headers, body in mails:
        assert any(h.startswith("Subject: 【J-Mups】メンテナンス作業中断のご連絡"
                                "（2021年8月23日(月)に再実施）") for h in headers)
        assert "前提作業の遅延のため、作業を中断いたしました。" in body
        assert "現在はサービスを通常通りご利用いただけます" in body
        assert "再実施日: 2021年8月23日(月) AM1:00～AM2:00（予備日）" in body
        assert "予定しておりました" not in body  # not the text of a postponement
    faxes = list((outbox / "fax" / folder).glob("*.pdf"))
    assert len(faxes) == 27


def test_a_postponement_before_the_start_names_the_operators_reason(
        cli: Cli, project: Path) -> None:
    assert cli("postpone", "3", "--reason", "前提作業の遅延のため", "--yes", "-c",
               str(project)).code == 0
    folder = project.parent / "var" / "outbox" / "email" / f"{WINDOW_3}_planned_postponed"
    bodies = [readable(p.read_bytes())[1] for p in folder.glob("*.eml")]
    assert bodies and all("前提作業の遅延のため、下記の予備日に改めて実施" in b and
                          "中断" not in b for b in bodies)


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


async def test_an_interrupted_notice_resumed_by_the_daemon_is_still_the_interrupted_one(
        project: Path) -> None:
    """The move is made during the work (its start notice went) and its sender dies before
    planning: the daemon resumes it with the interrupted templates and the reason."""
    during = datetime(2021, 7, 18, 16, 20, tzinfo=UTC)  # AM1:20 in Tokyo
    clock = lambda: during  # noqa: E731
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    async with project_ledger(project) as ledger:
        await planned_notice(ledger, "start", [], during, "schedule", WINDOW_3)
        plan = plan_postponement(inputs, window, await ledger.active_slots(), None, True,
                                 clock, None, True, "機器の不具合のため")
        await carry_out_postponement(ledger, plan, "a", "機器の不具合のため", clock)
    await run_daemon_at(project, during)
    mails = list((project.parent / "var" / "outbox" / "email" /
                  f"{WINDOW_3}_planned_postponed").glob("*.eml"))
    assert len(mails) == 28
    assert all("機器の不具合のため、作業を中断いたしました。" in readable(m.read_bytes())[1]
               for m in mails)


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(next(line.split()[1] for line in info.stdout.splitlines()
                    if line.startswith("Pages:")))


def test_postpone_no_move_interrupts_in_place_and_the_date_follows(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    """中断 with no reserve date chosen yet: every channel hears the work was stopped, why,
    that service is back, and that the new date will follow; the window stays on its slot,
    its end notice never goes, and a later postpone announces the date."""
    cli_at(DURING_THE_WORK)
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    stopped = datetime(2021, 7, 18, 16, 25, tzinfo=UTC)  # AM1:25
    cli_at(stopped)
    result = cli("postpone", "3", "--no-move", "--reason", "機器の不具合のため", "--yes",
                 "-c", str(project))
    assert result.code == 0, result.err
    assert "the work was stopped (中断) at 2021年7月19日(月) AM1:25" in " ".join(
        result.out.split())
    outbox, folder = project.parent / "var" / "outbox", f"{WINDOW_3}_planned_interrupted"
    texts = [p.read_text(encoding="utf-8") for p in (outbox / "sms" / folder).glob("*.txt")]
    assert len(texts) == 26 and all("作業を中断しました。現在は通常通りご利用いただけます。"
                                    "再実施日は決まり次第ご連絡します" in t for t in texts)
    mails = [readable(p.read_bytes()) for p in (outbox / "email" / folder).glob("*.eml")]
    assert len(mails) == 28
    for headers, body in mails:
        assert "Subject: 【J-Mups】メンテナンス作業中断のご連絡" in headers
        assert "機器の不具合のため、作業を中断いたしました。" in body
        assert "中断した作業: 2021年7月19日(月) AM1:00～AM1:25" in body
        assert "再実施日: 決まり次第ご連絡いたします" in body and "予備日" not in body
    faxes = list((outbox / "fax" / folder).glob("*.pdf"))
    assert len(faxes) == 27 and pages(faxes[0]) == 1
    rows = json.loads(cli("windows", "--json", "--now", "2021-07-19T03:00:00",
                          "-c", str(project)).out)
    assert rows[2]["active_slot"] == "planned" and rows[2]["work"]["state"] == "completed"
    assert rows[2]["notices"] == {"start": "done", "interrupted": "done"}
    assert rows[2]["next_notice"] is None  # no end notice: the work was stopped

    cli_at(datetime(2021, 7, 19, 3, tzinfo=UTC))  # the date is chosen, by noon
    moved = cli("postpone", "3", "--reason", "機器の不具合のため", "--yes", "-c",
                str(project))
    assert moved.code == 0, moved.err
    dated = [p.read_text(encoding="utf-8") for p in
             (outbox / "sms" / f"{WINDOW_3}_planned_postponed").glob("*.txt")]
    assert len(dated) == 26 and all("予備日 8/23(月) AM1:00～AM2:00" in t for t in dated)


def test_postpone_no_move_is_refused_where_there_is_nothing_to_interrupt(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    before = cli("postpone", "3", "--no-move", "--yes", "-c", str(project))
    assert before.code == 2 and "its start notice was not sent" in before.err
    with_to = cli("postpone", "3", "--no-move", "--to", "reserve-2021-08-23-0100", "--yes",
                  "-c", str(project))
    assert with_to.code == 2 and "it cannot go with --to" in with_to.err
    cli_at(DURING_THE_WORK)
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    assert cli("postpone", "3", "--no-move", "--no-notice", "--yes", "-c",
               str(project)).code == 0
    for again in (("postpone", "3", "--no-move"), ("done", "3"), ("extend", "3", "--until",
                                                                  "03:00")):
        refused = cli(*again, "--yes", "-c", str(project))
        assert refused.code == 2, again
        assert "was interrupted (中断)" in refused.err and "Traceback" not in refused.err
    assert not (project.parent / "var" / "outbox" / "sms" /
                f"{WINDOW_3}_planned_interrupted").exists()  # --no-notice: none sent
