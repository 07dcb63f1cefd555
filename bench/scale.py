"""A night at N merchants (default 100,000): what the contacts cost the daemon.

Generates N contacts, all in window 3's audience, each with a fax, an e-mail and a mobile
number; every channel writes to the outbox. Measures, each beside a **reference load**
measured in the same run (a plain script that reads the same CSV and validates every
number and address with the libraries the project uses, `phonenumbers` and
`email-validator`: the floor for any loader):

- `dispatcher check`;
- the daemon's start-up (to its "daemon started" line);
- the lateness of window 3's start notice when the contacts are edited one second
  before it (the daemon's own ``late_seconds``);
- `dispatcher status 3` and `dispatcher unreached 3 start` once the notice is under way;
- the console's notice page then;
- when the notice's first message of each channel reached the outbox;
- the peak RSS of the daemon's process tree, fax workers included.

    .venv/bin/python bench/scale.py [--contacts N] [--postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from broadcast import tree_memory

from dispatcher.demo import free_port
from dispatcher.web import Users

ROOT = Path(__file__).resolve().parent.parent
TOKYO = ZoneInfo("Asia/Tokyo")  # the shipped table's [dispatcher] timezone
TARGETS = {"check": 3.0, "daemon up": 2.0, "status": 2.0, "unreached": 2.0}
LATENESS_TARGET = 0.5
RSS_TARGET_MB = 600
REFERENCE = """
import csv, sys
import phonenumbers
from email_validator import validate_email
with open(sys.argv[1], encoding="utf-8", newline="") as f:
    for row in csv.DictReader(f):
        for key in ("fax", "sms"):
            number = phonenumbers.parse(row[key], "JP")
            assert phonenumbers.is_valid_number(number)
        validate_email(row["email"], check_deliverability=False)
"""


def contact_row(n: int) -> str:
    high, low = n // 10000 % 1000, n % 10000
    return (f"S{n:06d},ベンチ加盟店{n:06d},担当 {n},03-3{high:03d}-{low:04d},"
            f"s{n:06d}@example.jp,090-1{high:03d}-{low:04d},emoney\n")


def make_project(folder: Path, contacts: int, start: datetime, ledger: str | None) -> Path:
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "contacts").mkdir()
    with (folder / "contacts" / "bench.csv").open("w", encoding="utf-8") as out:
        out.write("id,merchant,name,fax,email,sms,tags\n")
        out.writelines(contact_row(n) for n in range(contacts))
    config = folder / "config.toml"
    write_config(config, start, ledger)
    return config


def write_config(config: Path, start: datetime, ledger: str | None) -> None:
    """The shipped table (every channel to the outbox) with window 3 at ``start``, and its
    ledger at ``ledger`` (a database URL; None: the shipped SQLite file)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    if ledger is not None:
        text = text.replace('ledger = "sqlite:///var/ledger.sqlite3"', f'ledger = "{ledger}"')
    local = start.astimezone(TOKYO).replace(tzinfo=None, microsecond=0)
    end = local + timedelta(hours=1)
    text = text.replace("start = 2021-07-19T01:00:00\nend = 2021-07-19T02:00:00",
                        f"start = {local.isoformat()}\nend = {end.isoformat()}")
    reserve, reserve_end = local + timedelta(days=35), end + timedelta(days=35)
    text = text.replace("  start = 2021-08-23T01:00:00\n  end = 2021-08-23T02:00:00",
                        f"  start = {reserve.isoformat()}\n  end = {reserve_end.isoformat()}")
    config.write_text(text, encoding="utf-8")


def timed(arguments: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(arguments, cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def dispatcher(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "dispatcher", *arguments]


class Log:
    """The daemon's JSON log lines, read as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[dict[str, object]]:
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def wait_for(self, message: str, after: int = 0, timeout: float = 3600
                 ) -> tuple[int, dict[str, object]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            for index, line in enumerate(lines[after:], after):
                if line.get("event") == message:
                    return index, line
            time.sleep(0.05)
        raise TimeoutError(f"no {message!r} in {self.path}")


def night(config: Path, folder: Path, sending_seconds: float, ledger: str | None
          ) -> dict[str, float]:
    """Start the daemon, move window 3's start close, edit the contacts 1 s before it; then
    look at the console's notice page, and let the notice go on ``sending_seconds`` (its
    fax workers at work) before stopping."""
    port = free_port()
    with config.open("a", encoding="utf-8") as table:
        table.write(f'\n[http]\nlisten = "127.0.0.1:{port}"\n')
    Users(folder / "var" / "console-users").add("bench", "bench password")
    log = Log(folder / "daemon.log")
    figures: dict[str, float] = {}
    with log.path.open("wb") as output:
        started = time.perf_counter()
        daemon = subprocess.Popen(dispatcher("run", "--log-format", "json", "-c", str(config)),
                                  cwd=folder, stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            with tree_memory(daemon.pid) as peak:
                seen, _ = log.wait_for("daemon started")
                figures["daemon up"] = time.perf_counter() - started
                # the start: after one reload of the whole table, with room to spare
                moved = time.perf_counter()
                start = datetime.now(UTC) + timedelta(seconds=8 + 3 * figures["daemon up"])
                write_config(config, start, ledger)
                seen, _ = log.wait_for("table reloaded", seen + 1)
                figures["reload"] = time.perf_counter() - moved
                _sleep_until(start - timedelta(seconds=1))
                with (folder / "contacts" / "bench.csv").open("a", encoding="utf-8") as out:
                    out.write(contact_row(999_999))  # one more merchant, 1 s before the start
                _, line = log.wait_for("notice started", seen + 1)
                figures["lateness"] = float(line.get("late_seconds", 0.0))  # type: ignore[arg-type]
                figures["status"] = timed(dispatcher("status", "3", "-c", str(config)), folder)
                figures["unreached"] = timed(dispatcher("unreached", "3", "start", "-c",
                                                        str(config)), folder)
                figures["console"] = notice_page_seconds(port)
                time.sleep(sending_seconds)
                figures["daemon rss"] = _peak_rss_kib(daemon.pid) / 1024
            figures["rss"] = peak[0] / 1024
            figures.update(first_handed_over(folder / "var" / "outbox", start))
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
    return figures


def notice_page_seconds(port: int) -> float:
    """The time `GET /windows/3/notices/start` takes, logged in, during the send."""
    cookies: dict[str, str] = {}

    def request(method: str, path: str, form: dict[str, str] | None = None) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, urlencode(form) if form else None, headers)
        answer = connection.getresponse()
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookies[key] = rest.split(";")[0].strip('"')
        text = answer.read().decode("utf-8")
        if answer.status >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status}")
        return text

    csrf = re.search(r'name="csrf" value="([^"]+)"', request("GET", "/login"))
    assert csrf is not None
    request("POST", "/login", {"user": "bench", "password": "bench password",
                               "csrf": csrf.group(1), "next": "/"})
    start = time.perf_counter()
    request("GET", "/windows/3/notices/start")
    return time.perf_counter() - start


def first_handed_over(outbox: Path, due: datetime) -> dict[str, float]:
    """Per channel, the seconds from the notice's time to its first message in the outbox:
    what a merchant sees of the lateness (planning the deliveries comes first)."""
    firsts = {}
    for channel in ("fax", "email", "sms"):
        times = [p.stat().st_mtime for p in (outbox / channel).rglob("*") if p.is_file()]
        if times:
            firsts[f"first {channel}"] = min(times) - due.timestamp()
    return firsts


def _peak_rss_kib(pid: int) -> int:
    """The process's own peak RSS (VmHWM), without its children."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--sending-seconds", type=float, default=60.0,
                        help="how long the notice goes on before the daemon is stopped")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it, "
                        "the daemon's log included")
    parser.add_argument("--postgresql", action="store_true",
                        help="the ledger on a throwaway PostgreSQL from initdb")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        ledger = stack.enter_context(_postgresql()) if args.postgresql else None
        figures, reference = run(args.contacts, args.sending_seconds, args.keep, ledger)
    report(figures, reference, args.contacts, args.sending_seconds,
           "PostgreSQL" if args.postgresql else "SQLite")


def _postgresql() -> contextlib.AbstractContextManager[str]:
    sys.path.insert(0, str(ROOT))  # the tests' throwaway cluster (initdb, pg_ctl)
    from tests.servers import postgres_server
    return postgres_server()


def run(contacts: int, sending_seconds: float, keep: Path | None, ledger: str | None
        ) -> tuple[dict[str, float], float]:
    with tempfile.TemporaryDirectory(prefix="dispatcher-scale-") as temporary:
        folder = Path(temporary)
        if keep is not None:
            keep.mkdir(parents=True)
            folder = keep
        config = make_project(folder, contacts, datetime.now(UTC) + timedelta(days=30), ledger)
        reference_script = folder / "reference.py"
        reference_script.write_text(REFERENCE, encoding="utf-8")
        reference = timed([sys.executable, str(reference_script),
                           str(folder / "contacts" / "bench.csv")], folder)
        figures = {"check": timed(dispatcher("check", "-c", str(config)), folder)}
        figures.update(night(config, folder, sending_seconds, ledger))
    return figures, reference


def report(figures: dict[str, float], reference: float, contacts: int,
           sending_seconds: float, database: str) -> None:
    print(f"a night at {contacts:,} contacts (fax, e-mail and SMS each, outbox backends; "
          f"the ledger on {database})")
    print(f"  reference load (csv + phonenumbers + email-validator): {reference:7.1f} s")
    for name in ("check", "daemon up", "reload", "status", "unreached", "console"):
        target = f" (target ≤ {TARGETS[name]:g}×)" if name in TARGETS else ""
        print(f"  {name:<10} {figures[name]:7.1f} s  ratio {figures[name] / reference:5.1f}"
              f"{target}")
    print(f"  start notice late by {figures['lateness']:.3f} s with an edit 1 s before it "
          f"(target ≤ {LATENESS_TARGET} s)")
    firsts = ", ".join(f"{channel} {figures[f'first {channel}']:.1f} s"
                       if f"first {channel}" in figures else f"{channel} none yet"
                       for channel in ("fax", "email", "sms"))
    print(f"  its first message in the outbox after its time (its deliveries planned "
          f"first): {firsts}")
    print("  (console: its notice page, logged in, during the send; target < 1 s)")
    print(f"  peak RSS of the daemon's tree, {sending_seconds:g} s into the send: "
          f"{figures['rss']:.0f} MB "
          f"(target ≤ {RSS_TARGET_MB} MB; the daemon's own process "
          f"{figures['daemon rss']:.0f} MB, the rest its fax workers)")


if __name__ == "__main__":
    main()
