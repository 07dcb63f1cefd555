"""`dispatcher run`: on time, following edits and postponements, catching up, two at once."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.daemon import Daemon
from tests.helpers import (
    ROOT,
    TOKYO,
    WINDOW_3,
    Cli,
    all_sent,
    deliveries,
    project_ledger,
    sms_count,
    start_daemon,
    still_daemon,
    stop,
    subjects,
    tick_after_edit,
    timed_window,
    use_contacts,
    wait_for,
)
from tests.servers import smtp_server

EMAILS, TEXTS = 28, 26  # window 3's contacts with an e-mail address, with a mobile number


def test_both_notices_arrive_once_and_never_early(project: Path) -> None:
    # How late they are is a figure for bench/lateness.py, not a bound for a shared machine.
    with smtp_server() as (sink, port, _):
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        end = start + timedelta(seconds=4)
        timed_window(project, start, end, port)
        log = project.parent / "run.log"
        daemon = start_daemon(project, log)
        wait_for(lambda: len(sink) >= 2 * EMAILS and sms_count(project) == 2 * TEXTS,
                 600, "every message arrived")
        wait_for(lambda: all_sent(project, 2 * (EMAILS + TEXTS)), 600, "every delivery sent")
        output = stop(daemon, log)
        arrivals = subjects(sink)
    starts = [a for a in arrivals if "開始" in a[2]]
    ends = [a for a in arrivals if "終了" in a[2]]
    assert len(starts) == len(ends) == EMAILS
    assert len({r for _, r, _ in starts}) == len({r for _, r, _ in ends}) == EMAILS
    assert min(t for t, _, _ in starts) >= start.timestamp()
    assert min(t for t, _, _ in ends) >= end.timestamp()
    assert "notice finished" in output and "daemon stopped" in output
    assert sms_count(project) == 2 * TEXTS


async def test_edits_move_jobs_and_broken_edits_keep_the_last_good_table(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    timed_window(project, base + timedelta(hours=1), base + timedelta(hours=2), None)
    async with still_daemon(project, base) as daemon:
        await daemon.tick()
        key = "2021-07-19-emoney/planned/start"
        assert daemon.scheduled()[key] == base + timedelta(hours=1)

        text = project.read_text(encoding="utf-8")
        moved = text.replace((base + timedelta(hours=1)).isoformat(),
                             (base + timedelta(minutes=30)).isoformat())
        project.write_text(moved, encoding="utf-8")
        await tick_after_edit(daemon)
        assert daemon.scheduled()[key] == base + timedelta(minutes=30)

        caplog.set_level(logging.ERROR)
        broken = moved.replace((base + timedelta(hours=2)).isoformat(),
                               (base - timedelta(hours=2)).isoformat())
        project.write_text(broken + "\n", encoding="utf-8")
        await tick_after_edit(daemon)
        assert daemon.scheduled()[key] == base + timedelta(minutes=30)
        problems = [getattr(r, "fields", {}).get("problem", "") for r in caplog.records]
        assert any(f"{project}:" in p and "windows[3].end: must be after start" in p
                   for p in problems), problems


async def test_an_edit_that_could_not_be_read_before_a_notice_waits_until_it_is_planned(
        project: Path) -> None:
    """An edit seen when the notice is due before a reload could end (twice the last
    load) is read once the notice's deliveries are planned: 100,000 contacts read in
    another thread would slow the notice down and would not be in force in time anyway."""
    start = datetime(2030, 1, 1, 1, 0, tzinfo=UTC)
    timed_window(project, start, start + timedelta(hours=1), None)
    now = [start - timedelta(microseconds=1)]  # due before any load (over 0.5 µs) ends
    daemon = Daemon(project, lambda: now[0])
    await daemon.open()
    try:
        await daemon.tick()
        before = len(daemon.inputs.contacts)
        with (project.parent / "contacts" / "tokyo.csv").open("a", encoding="utf-8") as out:
            out.write("M9999,追加加盟店,担当,,m9999@example.jp,,emoney\n")
        await tick_after_edit(daemon)
        assert len(daemon.inputs.contacts) == before  # held: the notice is due first
        now[0] = start + timedelta(seconds=1)
        await daemon.tick()
        await daemon.wait_for_sends()
        await tick_after_edit(daemon)
        assert daemon.inputs.contacts[-1].id == "M9999"  # read once the notice planned
    finally:
        await daemon.close()
    planned = {d.contact_id for d in await deliveries(project) if d.channel == "email"}
    assert "M9999" not in planned and len(planned) == EMAILS  # from the table in force


async def test_postponement_by_another_process_is_followed(project: Path, cli: Cli) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    timed_window(project, base + timedelta(hours=1), base + timedelta(hours=2), None)
    async with still_daemon(project, base) as daemon:
        await daemon.tick()
        assert set(daemon.scheduled()) == {"2021-07-19-emoney/planned/start",
                                           "2021-07-19-emoney/planned/end"}
        postponed = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes",
                                            "-c", str(project))
        assert postponed.code == 0, postponed.err
        await daemon.tick()
        scheduled = daemon.scheduled()
        assert {k: at for k, at in scheduled.items() if k.endswith(("/start", "/end"))} == {
            "2021-07-19-emoney/reserve-2030-01-31-1000/start": base + timedelta(days=30, hours=1),
            "2021-07-19-emoney/reserve-2030-01-31-1000/end": base + timedelta(days=30, hours=2)}
        # the reserve slot has reminders of its own; the planned slot's are dropped
        reminder = "2021-07-19-emoney/reserve-2030-01-31-1000/reminder-1h"
        assert scheduled[reminder] == base + timedelta(days=30)
        assert not any("/planned/" in key for key in scheduled)


async def test_catch_up_at_start_up_sends_what_is_still_meaningful(project: Path) -> None:
    base = datetime(2030, 1, 1, 12, tzinfo=UTC)
    timed_window(project, base - timedelta(minutes=10), base + timedelta(minutes=50), None)
    async with still_daemon(project, base) as daemon:
        decisions = await daemon.tick()
        assert [(d.notice.tag, d.action.value) for d in decisions] == [
            ("announce", "missed"), ("reminder-24h", "missed"), ("reminder-1h", "missed"),
            ("start", "send-now"), ("end", "schedule")]  # no fax here: no 72 h reminder
        await daemon.wait_for_sends()
        await daemon.tick()
        assert set(daemon.scheduled()) == {"2021-07-19-emoney/planned/end"}
    sms = project.parent / "var" / "outbox" / "sms" / "2021-07-19-emoney_planned_start"
    assert len(list(sms.glob("*.txt"))) == 26


async def test_notices_long_past_are_recorded_as_missed(project: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    base = datetime(2030, 1, 1, 12, tzinfo=UTC)
    timed_window(project, base - timedelta(hours=3), base - timedelta(hours=2), None)
    caplog.set_level(logging.WARNING)
    async with still_daemon(project, base) as daemon:
        await daemon.tick()
        await daemon.tick()
    missed = [r for r in caplog.records if r.getMessage() == "notice missed"]
    # announce, the e-mail and SMS reminders, start and end: each logged once
    assert len(missed) == 5, "each missed notice is logged once, at the first look"
    assert not (project.parent / "var" / "outbox").exists()


def test_two_daemons_on_one_ledger_send_each_delivery_once(project: Path) -> None:
    with smtp_server() as (sink, port, _):
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
        timed_window(project, start, start + timedelta(seconds=4), port)
        logs = [project.parent / "a.log", project.parent / "b.log"]
        daemons = [start_daemon(project, log) for log in logs]
        wait_for(lambda: len(sink) >= 2 * EMAILS and sms_count(project) == 2 * TEXTS,
                 600, "every message arrived")
        wait_for(lambda: all_sent(project, 2 * (EMAILS + TEXTS)), 600, "every delivery sent")
        for daemon, log in zip(daemons, logs, strict=True):
            stop(daemon, log)
        arrivals = subjects(sink)
    per_notice = Counter((r, "開始" in s) for _, r, s in arrivals)
    assert len(per_notice) == 2 * EMAILS and set(per_notice.values()) == {1}
    assert sms_count(project) == 2 * TEXTS


def test_demo_runs_by_itself_and_shows_both_notices(tmp_path: Path) -> None:
    # The demo ends when both notices have finished, however long the machine takes over
    # them. The window is so short that the start notice cannot finish before the end notice
    # is due: what it has not sent by then expires, and the end notice goes out in full.
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", "demo", "--start-in", "3", "--duration", "3",
         "-c", str(ROOT / "config.toml")],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}, cwd=tmp_path,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "▶ start notice of window 3: " in done.stdout
    # its reminder went 1 s before the start, unless the machine was too busy to be ready
    assert ("▶ reminder-1s notice of window 3: sms sent 26" in done.stdout
            or "▶ reminder-1s notice of window 3: missed" in done.stdout), done.stdout
    assert "▶ end notice of window 3: email sent 28, fax sent 27, sms sent 26" in done.stdout
    folder = Path(done.stdout.split("demo folder: ")[1].split()[0])
    by_phase = asyncio.run(_states_by_phase(folder / "config.toml"))
    assert by_phase["end"] == Counter({("email", "sent"): 28, ("fax", "sent"): 27,
                                       ("sms", "sent"): 26})
    start = by_phase["start"]
    assert {state for _, state in start} <= {"sent", "expired"} and start.total() == 81
    mails = len(list((folder / "received-mail").glob("*.eml")))
    faxes = len(list((folder / "var" / "outbox" / "fax").rglob("*.pdf")))
    assert mails == EMAILS + start["email", "sent"]
    assert faxes == 27 + start["fax", "sent"]
    assert list(tmp_path.iterdir()) == [], "the demo writes only inside its own folder"


async def _states_by_phase(config: Path) -> dict[str, Counter[tuple[str, str]]]:
    async with project_ledger(config) as ledger:
        return {n.phase: Counter((d.channel, d.state) for d in await ledger.deliveries_of(n.id))
                for n in await ledger.notices_of(WINDOW_3)}


def test_sigterm_mid_broadcast_stops_cleanly_and_a_restart_finishes_without_duplicates(
        project: Path) -> None:
    use_contacts(project, "".join(f"K{n:04d},加盟店{n},,,k{n:04d}@example.jp,,emoney\n"
                                  for n in range(1, 801)))
    with smtp_server() as (sink, port, _):
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        timed_window(project, start, start + timedelta(hours=1), port)
        text = project.read_text(encoding="utf-8").replace(
            'security = "none"', 'security = "none"\nrate_per_second = 200')
        project.write_text(text.replace('channels = ["email", "sms"]', 'channels = ["email"]'),
                           encoding="utf-8")
        first_log, second_log = project.parent / "first.log", project.parent / "second.log"
        first = start_daemon(project, first_log)
        wait_for(lambda: len(sink) >= 200, 600, "200 e-mails sent")
        output = stop(first, first_log)
        assert "daemon stopping" in output and "daemon stopped" in output
        stopped_at = len(sink)
        assert stopped_at < 800, "the stop came after the broadcast had finished"
        second = start_daemon(project, second_log)
        wait_for(lambda: len(sink) >= 800, 600, "every e-mail arrived")
        wait_for(lambda: all_sent(project, 800), 600, "every delivery sent")
        stop(second, second_log)
        recipients = Counter(sink.recipients())
    assert len(recipients) == 800 and set(recipients.values()) == {1}


def test_json_log_lines_carry_the_event_and_its_fields() -> None:
    from dispatcher.logs import JsonFormatter, TextFormatter, event, use_zone
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("dispatcher.test-json")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    moment = datetime(2021, 7, 19, 1, tzinfo=UTC)
    event(logger, logging.INFO, "notice started", window=3, at=moment, late_seconds=0.004)
    use_zone(None)
    try:
        line = json.loads(JsonFormatter().format(records[0]))
        assert {k: line[k] for k in ("level", "event", "window", "at", "late_seconds")} == {
            "level": "info", "event": "notice started", "window": 3,
            "at": "2021-07-19T01:00:00+00:00", "late_seconds": 0.004}
        text = TextFormatter().format(records[0])
        assert text.endswith('notice started window=3 at="2021-07-19T01:00:00+00:00" '
                             "late_seconds=0.004")
        use_zone(TOKYO)  # the daemon's, once it read the table: every time at +09:00
        line = json.loads(JsonFormatter().format(records[0]))
        assert line["at"] == "2021-07-19T10:00:00+09:00" and line["time"].endswith("+09:00")
        text = TextFormatter().format(records[0])
        assert text.endswith('at="2021-07-19T10:00:00+09:00" late_seconds=0.004')
        assert text[:25].endswith("+09:00")
    finally:
        use_zone(None)


async def test_a_job_that_fires_a_little_ahead_of_the_clock_sends_its_notice_then(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The daemon's clock stands half a second before AM1:00 and moves on; the scheduler
    fires the start job at once. The notice goes when its time comes, through that job
    (no tick loop runs here), and no job is skipped as still running (one was, and the
    notice waited for the next tick)."""
    text = project.read_text(encoding="utf-8").replace('channels = ["fax", "email", "sms"]',
                                                       'channels = ["email"]', 1)
    project.write_text(text, encoding="utf-8")
    start = datetime(2021, 7, 18, 16, 0, tzinfo=UTC)  # AM1:00 in Tokyo
    behind = datetime.now(UTC) - (start - timedelta(seconds=0.5))
    daemon = Daemon(project, lambda: datetime.now(UTC) - behind)
    caplog.set_level(logging.WARNING, logger="apscheduler")
    await daemon.open()
    try:
        await daemon.tick()

        async def started() -> None:
            async with project_ledger(project) as ledger:
                while await ledger.notice(WINDOW_3, "planned", "start") is None:
                    await asyncio.sleep(0.05)

        await asyncio.wait_for(started(), 120)  # against a hang, not a measure of speed
        await daemon.wait_for_sends()
    finally:
        await daemon.close()
    # (the later jobs, an hour ahead of this clock, fire at once on the real one: those
    # are this test's, not the start's)
    assert not [r for r in caplog.records if "maximum number of running" in r.getMessage()
                and "2021-07-19 01:00:00" in r.getMessage()]
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", "start")
    assert record is not None and record.created_at >= start


async def test_the_daemon_logs_the_ledger_it_opened_with_its_absolute_path(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`sqlite:///var/ledger.sqlite3` read like /var; the log names the file opened."""
    caplog.set_level(logging.INFO, logger="dispatcher.daemon")
    async with still_daemon(project, datetime(2021, 7, 18, 12, tzinfo=UTC)):
        pass
    [started] = [getattr(r, "fields", {}) for r in caplog.records
                 if r.getMessage() == "daemon started"]
    ledger = project.parent.resolve() / "var" / "ledger.sqlite3"
    assert started["ledger"] == f"sqlite+aiosqlite:///{ledger}"
    assert started["config"] == str(project.resolve())
