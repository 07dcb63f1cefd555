"""Riding out outages against real servers: an SMTP server that goes away, a Twilio that
answers 429, a PostgreSQL ledger stopped with pg_ctl, and a start notice that stops
mattering. Time is compressed through [retry]; the outages themselves last as long as
the issue says, because that is what is being tested."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.demo import free_port
from tests.helpers import (
    ROOT,
    TWILIO_ENV,
    WINDOW_3,
    Cli,
    configure,
    deliveries,
    project_ledger,
    real_channels,
    start_daemon,
    stop,
    subjects,
    timed_window,
    use_contacts,
    wait_for,
)
from tests.servers import FakeTwilio, SmtpSink, postgres_cluster, smtp_server

# Short backoffs and no cap on attempts: the shipped rule (retry while the notice matters)
# on a compressed clock.
PATIENT_RETRY = """
[retry]
initial_delay_seconds = 0.05
max_delay_seconds = 0.5
"""
BOUND = 600  # against a hang; never a measure of speed


def _contacts(count: int, with_email: bool = True, with_sms: bool = False) -> str:
    return "".join(
        f"K{n:04d},加盟店{n},,,{f'k{n:04d}@example.jp' if with_email else ''},"
        f"{f'090-5555-{n:04d}' if with_sms else ''},emoney\n" for n in range(1, count + 1))


def _send(project: Path, *args: str) -> subprocess.Popen[bytes]:
    """`dispatcher send` in its own process, its output in files beside the project (a pipe
    nobody reads would block it)."""
    out, err = (project.parent / "send.out").open("wb"), (project.parent / "send.err").open("wb")
    with out, err:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "send", "3", "start", "--yes", *args,
             "-c", str(project)],
            env={**os.environ, **TWILIO_ENV, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
            stdin=subprocess.DEVNULL, stdout=out, stderr=err)


def _finish(sending: subprocess.Popen[bytes], project: Path) -> str:
    """Waits for the send to end; exit code 0 expected; returns its log."""
    code = sending.wait(timeout=BOUND)
    err = (project.parent / "send.err").read_text(encoding="utf-8")
    assert code == 0, (project.parent / "send.out").read_text(encoding="utf-8") + err
    return err


def _rated(channels: str, rate: int) -> str:
    """Each channel limited to ``rate`` sends a second, so that an outage falls mid-notice."""
    return channels.replace("concurrency = 4\n", f"concurrency = 4\nrate_per_second = {rate}\n")


def _status(cli: Cli, project: Path) -> dict[str, object]:
    result = cli("status", "3", "--json", "-c", str(project))
    assert result.code == 0, result.err
    notices = json.loads(result.out)["notices"]
    assert len(notices) == 1
    notice: dict[str, object] = notices[0]
    return notice


def test_smtp_down_for_a_minute_mid_broadcast_then_every_email_is_delivered(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    port, sink = free_port(), SmtpSink()
    configure(project, _rated(real_channels(port, twilio[1]), 50), PATIENT_RETRY)
    use_contacts(project, _contacts(500))
    with smtp_server(sink=sink, port=port):
        sending = _send(project, "--channel", "email")
        wait_for(lambda: len(sink) >= 100, BOUND, "100 e-mails before the outage")
        sink.going_down = True  # the open connections are dropped, new ones refused
    time.sleep(60)  # the outage
    assert sending.poll() is None, "the send gave up during the outage"
    sink.going_down = False
    with smtp_server(sink=sink, port=port):
        err = _finish(sending, project)
    received = Counter(sink.recipients())
    assert len(received) == 500
    assert sum(received.values()) - 500 <= 4, "at most one duplicate per connection"
    records = asyncio.run(deliveries(project))
    assert {r.state for r in records} == {"sent"}
    assert "email: provider unreachable since" in err and "email: reachable again after" in err
    outages = _status(cli, project)["outages"]
    assert isinstance(outages, list) and len(outages) == 1
    assert outages[0]["channel"] == "email" and outages[0]["seconds"] >= 60
    assert 0 < outages[0]["deliveries_waiting"] <= 400 and outages[0]["probes"] > 1
    text = cli("status", "3", "-c", str(project)).out
    assert "email: provider unreachable " in text and "deliveries waited" in text


def test_twilio_answering_429_for_a_minute_then_every_sms_is_delivered(
        project: Path, smtp: tuple[SmtpSink, int], twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    configure(project, _rated(real_channels(smtp[1], url), 20), PATIENT_RETRY)
    use_contacts(project, _contacts(200, with_email=False, with_sms=True))
    sending = _send(project, "--channel", "sms")
    wait_for(lambda: len(fake.accepted) >= 40, BOUND, "40 SMS before the limit")
    fake.throttled = True
    time.sleep(60)  # Twilio says 429 to everything for a minute
    throttled_requests = fake.requests
    fake.throttled = False
    err = _finish(sending, project)
    assert "sms: provider unreachable since" in err and "sms: reachable again after" in err
    assert sorted(m["To"] for m in fake.accepted) == sorted(
        f"+81905555{n:04d}" for n in range(1, 201))
    records = asyncio.run(deliveries(project))
    assert {(r.state, r.attempts) for r in records} == {("sent", 1)}, "429s are not attempts"
    assert throttled_requests < 40 + 4 + 200, "the channel probed instead of trying each SMS"


def test_a_daemon_rides_out_its_postgresql_ledger_stopped_for_20_seconds(
        project: Path) -> None:
    with postgres_cluster() as cluster, smtp_server() as (sink, port, _):
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        timed_window(project, start, start + timedelta(hours=1), port)
        text = project.read_text(encoding="utf-8").replace(
            'ledger = "sqlite:///var/ledger.sqlite3"', f'ledger = "{cluster.url}"')
        text = text.replace('security = "none"', 'security = "none"\nrate_per_second = 30')
        text = text.replace('channels = ["email", "sms"]', 'channels = ["email"]')
        project.write_text(text + PATIENT_RETRY, encoding="utf-8")
        use_contacts(project, _contacts(400))
        log = project.parent / "run.log"
        daemon = start_daemon(project, log)
        wait_for(lambda: len(sink) >= 60, BOUND, "60 e-mails before the ledger stops")
        cluster.stop()
        time.sleep(20)  # the ledger's outage
        cluster.start()
        wait_for(lambda: len(set(sink.recipients())) == 400, BOUND, "every e-mail arrived")
        wait_for(lambda: _all_done(project), BOUND, "every delivery recorded sent")
        output = stop(daemon, log)
    received = Counter(sink.recipients())
    concurrency = 8  # the default [channels.email] concurrency
    assert sum(received.values()) - 400 <= concurrency, "duplicates at most one per worker"
    assert "ledger unreachable" in output and "ledger reachable again" in output
    assert "notice finished" in output


def _all_done(project: Path) -> bool:
    records = asyncio.run(deliveries(project))
    return len(records) == 400 and {r.state for r in records} == {"sent"}


def test_a_start_notice_expires_at_the_windows_end_and_the_end_notice_goes_out(
        cli: Cli, project: Path) -> None:
    # The provider answers 451 to every start-notice e-mail, so it is retried until the
    # work ends; then what is left expires and the end notice goes out regardless.
    with smtp_server(sink=SmtpSink(refuse_subject="開始")) as (sink, port, _):
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        end = start + timedelta(seconds=5)
        timed_window(project, start, end, port)
        text = project.read_text(encoding="utf-8").replace(
            'channels = ["email", "sms"]', 'channels = ["email"]')
        project.write_text(text + PATIENT_RETRY, encoding="utf-8")
        log = project.parent / "run.log"
        daemon = start_daemon(project, log)
        wait_for(lambda: len(sink) >= 28, BOUND, "the end notice's e-mails")
        wait_for(lambda: _phases_final(project), BOUND, "both notices final")
        output = stop(daemon, log)
        arrivals = subjects(sink)
    assert all("終了" in subject for _, _, subject in arrivals)
    assert len(arrivals) == 28 and min(at for at, _, _ in arrivals) >= end.timestamp()
    by_phase = asyncio.run(_states(project))
    before = {phase: c for phase, c in by_phase.items() if phase not in ("start", "end")}
    assert not any(before.values()), "the advance notice and reminders were long past: missed"
    assert {phase: by_phase[phase] for phase in ("start", "end")} == {
        "start": Counter({"expired": 28}), "end": Counter({"sent": 28})}
    assert "deliveries expired" in output
    status = cli("status", "3", "-c", str(project)).out
    assert ("expired: email 28 deliveries, not sent: the work had ended: the end notice was "
            "due") in status


def _phases_final(project: Path) -> bool:
    by_phase = asyncio.run(_states(project))
    return (by_phase.get("start", Counter()).get("expired") == 28
            and by_phase.get("end", Counter()).get("sent") == 28)


async def _states(project: Path) -> dict[str, Counter[str]]:
    async with project_ledger(project) as ledger:
        return {n.phase: Counter(d.state for d in await ledger.deliveries_of(n.id))
                for n in await ledger.notices_of(WINDOW_3)}
