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
from pathlib import Path

from tests.helpers import ROOT, TWILIO_ENV, configure, deliveries, real_channels, use_contacts
from tests.servers import smtp_server, twilio_server

CONTACTS = 2_000
CONCURRENCY = 4


def contacts_csv() -> str:
    return "".join(f"K{n:05d},加盟店{n:05d},,,k{n:05d}@example.jp,0901{n:07d},emoney\n"
                   for n in range(1, CONTACTS + 1))


def send(project: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "send", "3", "start", "--channel", "email",
             "--channel", "sms", "--yes", "-c", str(project)],
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
