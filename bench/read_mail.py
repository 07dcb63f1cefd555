"""Bounce intake speed: `dispatcher receipts read-mail --apply` over a Maildir of DSNs.

Builds a ledger of N sent e-mail deliveries (through the Ledger API) and one RFC 3464 DSN
per delivery, addressed to the delivery's own signed return path, as an MTA returns it;
half are hard bounces, a quarter delays, a quarter success DSNs. Prints messages per
second and the command's peak RSS, beside a baseline measured in the same run: a process
that only reads the same Maildir and parses each message with the standard library.
Target: at least 1,000 messages per second at 10,000.

    .venv/bin/python bench/read_mail.py [--mails N]
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.ledger import DeliveryState, Ledger, NewDelivery, Opening, Outcome, engine_url
from dispatcher.send import DeliveryTokens, delivery_tag
from dispatcher.table import load_config

ROOT = Path(__file__).resolve().parent.parent
TARGET_PER_SECOND = 1_000
BOUNCE_ADDRESS = "bounces+{token}@j-mups.example.jp"
OUTCOMES = (("failed", "5.1.1"), ("failed", "5.1.1"), ("delayed", "4.4.7"),
            ("delivered", "2.0.0"))


def make_project(folder: Path) -> Path:
    for name in ("templates", "contacts"):
        shutil.copytree(ROOT / name, folder / name)
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text += f'\n[receipts.email]\nbounce_address = "{BOUNCE_ADDRESS}"\n'
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


async def sent_deliveries(folder: Path, count: int) -> list[tuple[str, str]]:
    """``count`` e-mail deliveries recorded as sent; each one's return path and address."""
    now = datetime.now(UTC)
    ledger = await Ledger.open(engine_url("sqlite:///var/ledger.sqlite3", folder))
    try:
        record, _, _ = await ledger.open_notice(
            Opening("2021-07-19-emoney", "planned", "start", "bench", {"email": now}),
            [NewDelivery(f"B{n:06d}", "email", f"b{n:06d}@example.jp") for n in range(count)],
            now)
        claimed = await ledger.claim(record.id, "email", "bench", now,
                                     now + timedelta(hours=1), count)
        await ledger.record("bench", [Outcome(c.id, DeliveryState.SENT, sent_at=now, epoch=c.epoch)
                                      for c in claimed], now)
    finally:
        await ledger.close()
    tokens = DeliveryTokens.of(load_config(folder / "config.toml"))
    return [(str(tokens.envelope(delivery_tag(record, c.id)).sender), c.address)
            for c in claimed]


def dsn(return_path: str, recipient: str, action: str, status: str) -> bytes:
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.jp>
To: {return_path}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0"

--B0
Content-Type: text/plain

This is the mail system at host mx.example.jp.

--B0
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected

--B0
Content-Type: text/rfc822-headers

From: maintenance@j-mups.example.jp
To: {recipient}
Subject: =?utf-8?b?44Oh44Oz44OG44OK44Oz44K5?=

--B0--
""".encode()


def timed_process(arguments: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of a Python process running ``arguments``."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *arguments], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{arguments[:3]} exited with {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_maxrss


BASELINE = """
import mailbox, sys
from email import message_from_bytes
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
print(sum(1 for key in sorted(box.iterkeys()) if message_from_bytes(box.get_bytes(key))))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dispatcher-bench-") as temporary:
        folder = Path(temporary)
        config = make_project(folder)
        sent = asyncio.run(sent_deliveries(folder, args.mails))
        box = mailbox.Maildir(folder / "bounces", create=True)
        for index, (return_path, address) in enumerate(sent):
            box.add(dsn(return_path, address, *OUTCOMES[index % len(OUTCOMES)]))
        ours, rss = timed_process(["-m", "dispatcher", "receipts", "read-mail", "--apply",
                                   str(folder / "bounces"), "-c", str(config)])
        base, base_rss = timed_process(["-c", BASELINE, str(folder / "bounces")])
    count = len(sent)
    print(f"receipts read-mail --apply: {count:,} DSNs in {ours:.2f} s = "
          f"{count / ours:,.0f} messages/s (target ≥ {TARGET_PER_SECOND:,}); "
          f"peak RSS {rss / 1024:.0f} MB")
    print(f"baseline (read + parse only): {count / base:,.0f} messages/s; "
          f"peak RSS {base_rss / 1024:.0f} MB")
    print(f"ratio (read-mail / baseline time): {ours / base:.1f}")


if __name__ == "__main__":
    main()
