"""The daemon never dies of a tick: an edit that contradicts the ledger is rejected like any
invalid edit, reserve slots keep their names whatever happens to the others, and an
exception is logged once with its traceback, then counted, with a growing pause."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.daemon import Daemon
from dispatcher.demo import free_port
from dispatcher.logs import Failures
from dispatcher.schedule import Action, Decision
from dispatcher.table import Inputs
from dispatcher.web import Users
from tests.helpers import (
    BEFORE_EVERY_WINDOW,
    CONSOLE_PASSWORD,
    WINDOW_3,
    Cli,
    HttpClient,
    start_daemon,
    still_daemon,
    stop,
    tick_after_edit,
    use_contacts,
    wait_for,
)

SEED_RESERVE = "  [[windows.reserve]]\n  start = 2021-08-23T01:00:00\n  end = 2021-08-23T02:00:00\n"
BEFORE_THE_NIGHT = datetime(2021, 7, 18, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def early(cli_at: Callable[[datetime], None]) -> None:
    """The commands run before the seed's first window: every reserve slot is ahead."""
    cli_at(BEFORE_EVERY_WINDOW)


def set_every_notice_state(project: Path, state: str) -> None:
    """Write the ledger's file by hand, as another program (a newer version) might."""
    with contextlib.closing(sqlite3.connect(project.parent / "var" / "ledger.sqlite3")) as db:
        db.execute("UPDATE notices SET state = ?", (state,))
        db.commit()


def due(decisions: list[Decision]) -> dict[str, datetime]:
    """The notices a tick scheduled, with their times. (Read from its decisions, not from
    the scheduler: a job dated 2021 fires at once on the real clock, and is gone.)"""
    return {d.key: d.at for d in decisions if d.action is Action.SCHEDULE}


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    return [(r.getMessage(), getattr(r, "fields", {})) for r in caplog.records]


async def test_deleting_the_active_reserve_slot_is_rejected_and_the_daemon_goes_on(
        cli: Cli, project: Path, caplog: pytest.LogCaptureFixture) -> None:
    moved = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes", "-c",
                                    str(project))
    assert moved.code == 0, moved.err
    reserve_start = f"{WINDOW_3}/reserve-2021-08-23-0100/start"
    async with still_daemon(project, BEFORE_THE_NIGHT) as daemon:
        assert reserve_start in due(await daemon.tick())
        caplog.set_level(logging.INFO)
        text = project.read_text(encoding="utf-8")
        project.write_text(text.replace(SEED_RESERVE, "", 1), encoding="utf-8")
        assert await daemon.guarded_tick() == 1.0  # no failure: the edit is simply refused
        assert reserve_start in due(await daemon.tick())
        assert not daemon.stopping.is_set()
    rejected = [fields["problem"] for message, fields in messages(caplog)
                if message == "edit rejected, the last good table stays in force"]
    assert len(rejected) == 1
    assert "windows[3]" in str(rejected[0])
    assert "'reserve-2021-08-23-0100'" in str(rejected[0])


async def test_deleting_a_past_reserve_slot_keeps_the_names_of_the_others(
        cli: Cli, project: Path) -> None:
    second = "reserve-2021-07-04-2230"
    moved = await asyncio.to_thread(cli, "postpone", "2", "--to", second, "--no-notice",
                                    "--yes", "-c", str(project))
    assert moved.code == 0, moved.err
    text = project.read_text(encoding="utf-8")
    first = "  [[windows.reserve]]\n  start = 2021-06-30T22:30:00\n  end = 2021-07-01T01:00:00\n"
    project.write_text(text.replace(first, "", 1), encoding="utf-8")
    shown = await asyncio.to_thread(cli, "windows", "--json", "-c", str(project))
    assert shown.code == 0, shown.err
    assert '"active_slot": "reserve-2021-07-04-2230"' in shown.out


async def test_a_reserve_slot_with_an_id_may_move_its_times(cli: Cli, project: Path,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace(SEED_RESERVE, SEED_RESERVE.replace(
        "  start", '  id = "yobi"\n  start'), 1), encoding="utf-8")
    moved = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes", "-c",
                                    str(project))
    assert moved.code == 0, moved.err
    async with still_daemon(project, BEFORE_THE_NIGHT) as daemon:
        await daemon.tick()
        edited = project.read_text(encoding="utf-8").replace(
            "2021-08-23T01:00:00\n  end = 2021-08-23T02:00:00",
            "2021-08-24T01:00:00\n  end = 2021-08-24T02:00:00", 1)
        project.write_text(edited + "\n", encoding="utf-8")
        assert due(await tick_after_edit(daemon))[f"{WINDOW_3}/yobi/start"] == datetime(
            2021, 8, 23, 16, 0, tzinfo=UTC)  # AM1:00 JST on the 24th


async def test_an_exception_in_a_tick_is_logged_once_then_counted_and_backed_off(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with still_daemon(project, BEFORE_THE_NIGHT) as daemon:
        await daemon.tick()
        await asyncio.to_thread(set_every_notice_state, project, "paused")  # a newer version
        caplog.set_level(logging.INFO)
        pauses = [await daemon.guarded_tick() for _ in range(4)]
        assert pauses == [1.0, 2.0, 4.0, 8.0]
        await asyncio.to_thread(set_every_notice_state, project, "missed")
        assert await daemon.guarded_tick() == 1.0
        assert not daemon.stopping.is_set()
    logged = [(r.getMessage(), r.exc_info is not None) for r in caplog.records
              if r.getMessage().startswith("tick")]
    assert logged == [("tick failed", True), ("tick still failing", False),
                      ("tick still failing", False), ("tick works again", False)]


def test_repeated_failures_are_counted_at_powers_of_two_and_a_new_kind_logged_again(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    failures = Failures(logging.getLogger("test"), "reading the bounce mailbox")
    for _ in range(5):
        failures.failed(ConnectionRefusedError("connection refused"))
    failures.failed(TimeoutError("timed out"))
    failures.recovered()
    logged = [(r.getMessage(), getattr(r, "fields", {}).get("failures"),
               r.exc_info is not None) for r in caplog.records]
    assert logged == [
        ("reading the bounce mailbox failed", 1, True),
        ("reading the bounce mailbox still failing", 2, False),
        ("reading the bounce mailbox still failing", 4, False),
        ("reading the bounce mailbox failed", 6, True),
        ("reading the bounce mailbox works again", None, False),
    ]


async def test_a_daemon_started_on_a_table_without_the_active_slot_refuses_clearly(
        cli: Cli, project: Path) -> None:
    moved = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes", "-c",
                                    str(project))
    assert moved.code == 0, moved.err
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace(SEED_RESERVE, "", 1), encoding="utf-8")
    ran = await asyncio.to_thread(cli, "run", "-c", str(project))
    assert ran.code == 2
    assert "windows[3]" in ran.err and "reserve-2021-08-23-0100" in ran.err
    assert "Traceback" not in ran.err



def daemon_with_console(project: Path) -> tuple[subprocess.Popen[bytes], Path, HttpClient]:
    """`dispatcher run` serving its console on a free port, started; its log; and a
    browser logged in as desk."""
    port = free_port()
    with project.open("a", encoding="utf-8") as config:
        config.write(f'\n[http]\nlisten = "127.0.0.1:{port}"\n')
    Users(project.parent / "var" / "console-users").add("desk", CONSOLE_PASSWORD)
    log = project.parent / "run.log"
    daemon = start_daemon(project, log)
    try:
        wait_for(lambda: "daemon started" in log.read_text(encoding="utf-8")
                 or daemon.poll() is not None, 120, "the daemon to start")
        desk = HttpClient(port)
        assert desk.login() == 303
    except BaseException:
        daemon.kill()
        raise
    return daemon, log, desk


def test_sigterm_ends_an_open_progress_stream_and_the_daemon_stops(project: Path) -> None:
    daemon, log, desk = daemon_with_console(project)
    try:
        stream = http.client.HTTPConnection("127.0.0.1", desk.port, timeout=120)
        stream.request("GET", "/windows/3/notices/start/progress", headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in desk.cookies.items())})
        response = stream.getresponse()
        assert response.status == 200
        assert response.readline().startswith(b"data: ")  # an unsent notice: it would go on
        output = stop(daemon, log)  # returns only once the daemon has exited
        assert "daemon stopped" in output
        assert response.read().endswith(b"\n")  # returns: the stream ended with the daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()


class SlowLoader(Daemon):
    """A daemon whose reading of the files, once ``gate`` is armed, waits for it to open:
    a stand-in for a reload of 100,000 contacts."""

    gate: threading.Event | None = None

    def _load(self) -> Inputs:
        if self.gate is not None:
            assert self.gate.wait(300), "the test never opened the gate"
        return super()._load()


async def test_a_notice_goes_on_time_while_an_edit_is_still_being_read(
        project: Path) -> None:
    use_contacts(project, "M1,加盟店1,担当1,,m1@shop.example.jp,,emoney\n")
    daemon = SlowLoader(project, lambda: datetime(2021, 7, 18, 16, 0, 30, tzinfo=UTC))
    await daemon.open()
    try:
        daemon.gate = threading.Event()
        with (project.parent / "contacts" / "test.csv").open("a", encoding="utf-8") as out:
            out.write("M2,加盟店2,担当2,,m2@shop.example.jp,,emoney\n")
        # the tick returns while the edit is being read: the start notice goes now, with
        # the table in force (a hang guard only: the old code never got past this)
        decisions = await asyncio.wait_for(daemon.tick(), 120)
        assert f"{WINDOW_3}/planned/start" in {d.key for d in decisions
                                               if d.action is Action.SEND_NOW}
        await daemon.wait_for_sends()
        assert [c.id for c in daemon.inputs.contacts] == ["M1"]
        daemon.gate.set()
        await daemon.wait_for_reload()
        assert [c.id for c in daemon.inputs.contacts] == ["M1", "M2"]
    finally:
        daemon.gate = None
        await daemon.close()
    sent = {p.name for p in (project.parent / "var" / "outbox" / "email").rglob("*.eml")}
    assert sent == {"M1-m1@shop.example.jp.eml"}


def test_the_daemons_console_shows_the_table_in_force_after_a_broken_edit(
        project: Path) -> None:
    daemon, log, desk = daemon_with_console(project)
    try:
        text = project.read_text(encoding="utf-8")
        project.write_text(text.replace("end = 2021-07-19T02:00:00",
                                        "end = 2021-07-19T00:00:00", 1), encoding="utf-8")
        wait_for(lambda: "edit rejected" in log.read_text(encoding="utf-8"), 120,
                 "the daemon to reject the edit")
        status, _, page = desk.request("GET", "/")
        # one source of truth: what the daemon sends from, not the broken file (was a 400)
        assert status == 200 and "2021年7月19日(月) AM1:00～AM2:00" in page
        # and says which edit is not in force, and why
        assert "編集は反映されていません" in page and "windows[3].end" in page
    finally:
        stop(daemon, log)


async def test_a_rejected_template_edit_never_reaches_a_send(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At 00:59 the SMS start template is edited to name a variable that does not exist:
    the edit is rejected, and at AM1:00 the start notice goes on every channel with the
    last good templates (it failed on every channel, for one SMS template)."""
    text = project.read_text(encoding="utf-8").replace('channels = ["fax", "email", "sms"]',
                                                       'channels = ["email", "sms"]', 1)
    project.write_text(text, encoding="utf-8")
    now = [datetime(2021, 7, 18, 15, 59, tzinfo=UTC)]  # 00:59 in Tokyo
    daemon = Daemon(project, lambda: now[0])
    await daemon.open()
    try:
        await daemon.tick()
        caplog.set_level(logging.INFO)
        template = project.parent / "templates" / "sms" / "start.txt.j2"
        template.write_text(template.read_text(encoding="utf-8").replace(
            "を開始しました", "を開始しました{{ no_such_thing }}"), encoding="utf-8")
        await tick_after_edit(daemon)
        now[0] = datetime(2021, 7, 18, 16, 0, tzinfo=UTC)
        await daemon.tick()
        await daemon.wait_for_sends()
    finally:
        await daemon.close()
    rejected = [fields["problem"] for message, fields in messages(caplog)
                if message == "edit rejected, the last good table stays in force"]
    assert rejected and "no_such_thing" in str(rejected[0])
    outbox = project.parent / "var" / "outbox"
    texts = list((outbox / "sms" / f"{WINDOW_3}_planned_start").glob("*.txt"))
    mails = list((outbox / "email" / f"{WINDOW_3}_planned_start").glob("*.eml"))
    assert texts and mails
    assert all("を開始しました" in t.read_text(encoding="utf-8") for t in texts)
    assert not [m for m, _ in messages(caplog) if m == "notice not sent"]
