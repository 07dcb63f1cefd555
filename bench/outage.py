"""Riding out an SMTP outage: a 2,000-contact e-mail notice with the shipped [retry] while
the SMTP server is down for ``--outage-seconds`` (300 by default), from the moment a
quarter of the e-mails have arrived.

Printed: deliveries failed or expired (target 0), the time from the server's return to the
last delivery (target under 60 s), the probes made during the outage, and, as the baseline
measured in the same run, the same notice sent with no outage; the ratio compares the
catch-up after the outage with that whole baseline send.

    .venv/bin/python bench/outage.py [--outage-seconds 300] [--contacts 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dispatcher.demo import MailSink, free_port, mail_server

ROOT = Path(__file__).resolve().parent.parent


class StoppableSink(MailSink):
    """While ``going_down``, each open connection gets 421 and is closed, so that stopping
    the server drops the connections it holds as a server that goes away does."""

    going_down = False

    async def handle_DATA(self, server: Any, session: object, envelope: Any) -> str:
        if self.going_down:
            server.transport.close()
            return "421 4.3.2 service shutting down"
        return self.accept(envelope)


def make_project(folder: Path, contacts: int, port: int) -> Path:
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "contacts").mkdir()
    with (folder / "contacts" / "bench.csv").open("w", encoding="utf-8") as out:
        out.write("id,merchant,name,fax,email,sms,tags\n")
        for n in range(contacts):
            out.write(f"B{n:06d},ベンチ加盟店{n:06d},担当 {n},,b{n:06d}@example.jp,,emoney\n")
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text[: text.index("# Each channel's backend")]
    config = folder / "config.toml"
    config.write_text(text + f"""
[channels.email]
backend = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
from = "J-Mups センター <maintenance@j-mups.example.jp>"
""", encoding="utf-8")
    return config


def start_send(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "send", "3", "start", "--channel", "email",
         "--yes", "-c", str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


def baseline(folder: Path, contacts: int) -> float:
    """Seconds to send the notice with the server up throughout."""
    port = free_port()
    config = make_project(folder, contacts, port)
    with mail_server(MailSink(), port):
        start = time.perf_counter()
        code = start_send(config).wait()
    if code != 0:
        raise RuntimeError(f"the baseline send exited with {code}")
    return time.perf_counter() - start


def with_outage(folder: Path, contacts: int, outage: float) -> tuple[int, float, int, int]:
    """Exit code, seconds from the server's return to the last arrival, probes, and the
    deliveries not sent."""
    port, sink = free_port(), StoppableSink()
    config = make_project(folder, contacts, port)
    with mail_server(sink, port):
        process = start_send(config)
        while len(sink) < contacts // 4:
            if process.poll() is not None:
                raise RuntimeError("the send ended before the outage began")
            time.sleep(0.05)
        sink.going_down = True
    print(f"  SMTP server down after {len(sink)} e-mails, for {outage:g} s", flush=True)
    time.sleep(outage)
    sink.going_down = False
    with mail_server(sink, port):
        returned = time.time()
        code = process.wait()
    last = max(arrival.at for arrival in sink.arrivals())
    status = subprocess.run(
        [sys.executable, "-m", "dispatcher", "status", "3", "--json", "-c", str(config)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    notice = json.loads(status.stdout)["notices"][0]
    probes = sum(o["probes"] for o in notice["outages"])
    unsent = len(notice["failures"])
    return code, last - returned, probes, unsent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-seconds", type=float, default=300.0)
    parser.add_argument("--contacts", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-bench-outage-"))
    try:
        base = baseline(folder / "baseline", args.contacts)
        print(f"baseline, no outage: {args.contacts:,} e-mails in {base:.1f} s", flush=True)
        code, catch_up, probes, unsent = with_outage(folder / "outage", args.contacts,
                                                     args.outage_seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"with a {args.outage_seconds:g} s outage: exit code {code}")
    print(f"  deliveries failed or expired: {unsent} (target 0)")
    print(f"  from the server's return to the last delivery: {catch_up:.1f} s (target < 60 s)")
    print(f"  probes during the outage: {probes}")
    print(f"  ratio, catch-up / baseline send: {catch_up / base:.2f}")


if __name__ == "__main__":
    main()
