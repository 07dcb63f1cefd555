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
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller

from dispatcher.demo import free_port

ROOT = Path(__file__).resolve().parent.parent


class Arrivals:
    """First arrival time per (recipient, phase), the phase read from the subject."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        now = time.time()
        subject = str(make_header(decode_header(message_from_bytes(envelope.content)["Subject"])))
        phase = "start" if "開始" in subject else "end"
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self.first.setdefault((recipient, phase), now)
        return "250 OK"


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


def lateness(arrivals: Arrivals, starts: list[datetime]) -> list[float]:
    late = []
    for n, start in enumerate(starts, 1):
        for phase, at in (("start", start), ("end", start + timedelta(seconds=1))):
            first = arrivals.first.get((f"w{n}@example.jp", phase))
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=20)
    args = parser.parse_args()
    arrivals = Arrivals()
    port = free_port()
    controller = Controller(arrivals, hostname="127.0.0.1", port=port)
    controller.start()
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-lateness-"))
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    starts = [first + timedelta(seconds=2 * n) for n in range(args.windows)]
    try:
        config = make_project(folder, port, starts)
        daemon = subprocess.Popen([sys.executable, "-m", "dispatcher", "run", "-c", str(config)],
                                  env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(max(0.0, starts[-1].timestamp() + 4 - time.time()))
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        ours = lateness(arrivals, starts)
        again = datetime.now(UTC) + timedelta(seconds=1)
        bare = asyncio.run(baseline(port, [again + timedelta(seconds=0.5 * n)
                                           for n in range(args.windows)]))
    finally:
        controller.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print("lateness: planned time → first message accepted by the SMTP server")
    print(describe("dispatcher run (daemon)", ours))
    print(describe("bare asyncio sleep + send ", bare))
    print(f"  ratio of medians (daemon / bare): "
          f"{statistics.median(ours) / statistics.median(bare):.1f}; target: max ≤ 1000 ms: "
          f"{'met' if max(ours) <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
