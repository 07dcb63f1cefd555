"""kill -9 in the middle of a 2,000-contact broadcast, then a second send finishes it.

Every contact gets exactly one message per channel, except at most `concurrency`
duplicates per channel (the messages in flight at the kill); nothing is lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, TWILIO_ENV, configure, deliveries, real_channels, use_contacts
from tests.servers import SmtpSink, smtp_server, twilio_server

CONTACTS = 2_000
CONCURRENCY = 4


def contacts_csv() -> str:
    return "".join(f"K{n:05d},加盟店{n:05d},,,k{n:05d}@example.jp,0901{n:07d},emoney\n"
                   for n in range(1, CONTACTS + 1))


def send(project: Path, env: dict[str, str], log: Path,
         channels: Sequence[str] = ("email", "sms")) -> subprocess.Popen[bytes]:
    options = [word for channel in channels for word in ("--channel", channel)]
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "send", "3", "start", *options, "--yes",
             "-c", str(project)],
            env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)


def test_kill_9_mid_broadcast_then_send_again(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **TWILIO_ENV}
    use_contacts(project, contacts_csv())
    with smtp_server() as (sink, port, _), twilio_server() as (fake, url):
        channels = real_channels(port, url).replace(
            "concurrency = 4", f"concurrency = {CONCURRENCY}\nrate_per_second = 500")
        configure(project, channels)
        text = project.read_text(encoding="utf-8").replace(
            "catch_up_minutes = 30", "catch_up_minutes = 30\nlease_seconds = 2")
        project.write_text(text, encoding="utf-8")

        first_log, second_log = project.parent / "first.log", project.parent / "second.log"
        first = send(project, env, first_log)
        deadline = time.monotonic() + 600  # against a hang, not a measure of speed
        while len(sink) < 400 and time.monotonic() < deadline:
            assert first.poll() is None, first_log.read_text()
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert first.returncode == -signal.SIGKILL
        at_kill = len(sink) + len(fake.accepted)
        assert at_kill < 2 * CONTACTS, "the kill came after the broadcast had finished"

        second = send(project, env, second_log)
        assert second.wait(timeout=1200) == 0, second_log.read_text()

        emails = Counter(sink.recipients())
        texts = Counter(m["To"] for m in fake.accepted)
    assert len(emails) == CONTACTS and len(texts) == CONTACTS, "a contact was lost"
    assert sum(emails.values()) - CONTACTS <= CONCURRENCY
    assert sum(texts.values()) - CONTACTS <= CONCURRENCY
    states = Counter(d.state for d in asyncio.run(deliveries(project)))
    assert states == {"sent": 2 * CONTACTS}



class InterruptingSink(SmtpSink):
    """Presses Ctrl-C on the sender (SIGINT to ``pid``) as it accepts the ``at``-th
    message, so "after the interrupt" is a point in the sink's own count."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.pid = 0

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self) == self.at:
            os.kill(self.pid, signal.SIGINT)
        return reply


def test_ctrl_c_mid_broadcast_stops_at_what_is_in_flight_and_sends_nothing_twice(
        project: Path) -> None:
    """Ctrl-C stops as a stop does: what the workers had started finishes and is recorded,
    what was claimed but still queued (up to 64) goes back to pending, and a second send
    sends each contact's message exactly once: no duplicate, unlike a kill -9."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **TWILIO_ENV}
    use_contacts(project, contacts_csv())
    sink = InterruptingSink(at=400)
    with smtp_server(sink=sink) as (_, port, _ca), twilio_server() as (_fake, url):
        configure(project, real_channels(port, url).replace(
            "concurrency = 4", f"concurrency = {CONCURRENCY}\nrate_per_second = 500"))
        first_log, second_log = project.parent / "first.log", project.parent / "second.log"
        first = send(project, env, first_log, ["email"])
        sink.pid = first.pid
        assert first.wait(timeout=600) == 130, first_log.read_text()
        after_the_interrupt = len(sink) - sink.at
        at_stop = Counter(d.state for d in asyncio.run(deliveries(project)))

        second = send(project, env, second_log, ["email"])
        assert second.wait(timeout=1200) == 0, second_log.read_text()
        emails = Counter(sink.recipients())
    # at most each worker's message in flight, and one each might start as the signal lands
    assert after_the_interrupt <= 2 * CONCURRENCY, after_the_interrupt
    assert "sending" not in at_stop, at_stop  # nothing is left held by a lease
    interrupted = first_log.read_text(encoding="utf-8")
    assert "Traceback" not in interrupted and "interrupted" in interrupted, interrupted
    assert set(emails.values()) == {1} and len(emails) == CONTACTS
