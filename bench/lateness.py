"""Lateness: from a notice's planned time to its first message accepted by the SMTP server.

20 broadcast windows, a start and an end notice each, run by `dispatcher run` against an
SMTP server on 127.0.0.1. The baseline, measured in the same run: a bare asyncio loop that
sleeps until each planned time and sends one ready e-mail over a new aiosmtplib
connection. Target: at most 1 second.

    .venv/bin/python bench/lateness.py [--windows N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import aiosmtplib

from dispatcher.demo import MailSink, mail_server

ROOT = Path(__file__).resolve().parent.parent


def make_project(folder: Path, port: int, starts: list[datetime]) -> Path:
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "contacts").mkdir()
    rows = ["id,merchant,name,fax,email,sms,tags"]
    rows += [f"W{n},加盟店{n},,,w{n}@example.jp,,w{n}" for n in range(1, len(starts) + 1)]
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    head = text[: text.index("[[windows]]")]
    windows = []
    for n, start in enumerate(starts, 1):
        windows.append(f"""
[[windows]]
number = {n}
id = "bench-{n}"
title = "bench {n}"
start = {start.isoformat()}
end = {(start + timedelta(seconds=1)).isoformat()}
impact = "影響"
notify = "broadcast"
channels = ["email"]
audience = ["w{n}"]
""")
    (folder / "contacts" / "bench.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = folder / "config.toml"
    config.write_text(head + "".join(windows) + f"""
[channels.email]
backend = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
""", encoding="utf-8")
    return config


def first_arrivals(sink: MailSink) -> dict[tuple[str, str], float]:
    """When the first message of each (recipient, phase) arrived, the phase read from the
    subject."""
    first: dict[tuple[str, str], float] = {}
    for arrival in sink.arrivals():
        message = message_from_bytes(arrival.content)
        subject = str(make_header(decode_header(message["Subject"])))
        phase = "start" if "開始" in subject else "end"
        for recipient in arrival.recipients:
            first.setdefault((recipient, phase), arrival.at)
    return first


def lateness(sink: MailSink, starts: list[datetime]) -> list[float]:
    late = []
    arrivals = first_arrivals(sink)
    for n, start in enumerate(starts, 1):
        for phase, at in (("start", start), ("end", start + timedelta(seconds=1))):
            first = arrivals.get((f"w{n}@example.jp", phase))
            if first is None:
                raise RuntimeError(f"the {phase} notice of window {n} never arrived")
            late.append(first - at.timestamp())
    return late


async def baseline(port: int, starts: list[datetime]) -> list[float]:
    late = []
    raw = b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: x\r\n\r\nbody\r\n"
    for at in starts:
        await asyncio.sleep(max(0.0, at.timestamp() - time.time()))
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        await smtp.sendmail("a@example.jp", ["b@example.jp"], raw)
        late.append(time.time() - at.timestamp())
        await smtp.quit()
    return late


def describe(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return (f"  {label}: median {statistics.median(ordered) * 1000:7.1f} ms, p95 "
            f"{p95 * 1000:7.1f} ms, max {ordered[-1] * 1000:7.1f} ms ({len(ordered)} notices)")


def measure(sink: MailSink, port: int, windows: int) -> tuple[list[float], list[float]]:
    """Lateness of the daemon's notices, then of the bare loop, against the same server."""
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-lateness-"))
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    starts = [first + timedelta(seconds=2 * n) for n in range(windows)]
    try:
        config = make_project(folder, port, starts)
        daemon = subprocess.Popen([sys.executable, "-m", "dispatcher", "run", "-c", str(config)],
                                  env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_for_notices(sink, 2 * len(starts))
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=300)
        ours = lateness(sink, starts)
        again = datetime.now(UTC) + timedelta(seconds=1)
        bare = asyncio.run(baseline(port, [again + timedelta(seconds=0.5 * n)
                                           for n in range(len(starts))]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ours, bare


def wait_for_notices(sink: MailSink, count: int) -> None:
    """Until every notice has arrived; late ones are what this measures, so only a hang
    (10 minutes) ends the wait early."""
    deadline = time.monotonic() + 600
    while len(first_arrivals(sink)) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=20)
    args = parser.parse_args()
    sink = MailSink()
    with mail_server(sink) as port:
        ours, bare = measure(sink, port, args.windows)
    print("lateness: planned time → first message accepted by the SMTP server")
    print(describe("dispatcher run (daemon)", ours))
    print(describe("bare asyncio sleep + send ", bare))
    print(f"  ratio of medians (daemon / bare): "
          f"{statistics.median(ours) / statistics.median(bare):.1f}; target: max ≤ 1000 ms: "
          f"{'met' if max(ours) <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
