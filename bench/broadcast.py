"""A whole broadcast: `dispatcher send 3 start` on all three channels for N contacts,
e-mail to a local SMTP sink in its own process (Postfix smtp-sink, or aiosmtpd), SMS and
personalised fax pages to the outbox. Prints the wall time and peak RSS beside a baseline
measured in the same run: the e-mail channel alone for the same contacts. Target: 10,000
contacts in at most 120 s and 300 MB.

    .venv/bin/python bench/broadcast.py [--contacts N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from send import make_project, run_send, start_sink

from dispatcher.demo import free_port

TARGET_SECONDS = 120
TARGET_MB = 300


def every_channel(n: int) -> str:
    """A contact with a fax, an e-mail and a mobile number."""
    high, low = n // 10000 % 1000, n % 10000
    return (f"B{n:06d},ベンチ加盟店{n:06d},担当 {n},03-3{high:03d}-{low:04d},"
            f"b{n:06d}@example.jp,090-1{high:03d}-{low:04d},emoney\n")


OUTBOXES = """
[channels.sms]
backend = "outbox"
path = "outbox/sms"

[channels.fax]
backend = "outbox"
path = "outbox/fax"
concurrency = 4
"""


@contextmanager
def tree_memory(root: int | None = None, exclude: int | None = None
                ) -> Iterator[list[int]]:
    """Samples, every 0.2 s, the summed RSS (KiB) of ``root`` and its descendants (without
    ``root``: this process's descendants) but ``exclude`` (a sink): `send` or the daemon
    with its fax worker processes, which its own peak RSS does not count. Yields a list
    whose one item is the peak so far."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            pids = [root, *_descendants(root)] if root else _descendants(os.getpid())
            peak[0] = max(peak[0], sum(_rss_kib(pid) for pid in pids if pid != exclude))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit():
            parent = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    port = free_port()
    sink, _ = start_sink(port)
    try:
        with tempfile.TemporaryDirectory(prefix="dispatcher-bench-") as temporary:
            folder = Path(temporary)
            email_only, email_kib = run_send(make_project(folder / "email", args.contacts, port,
                                                          every_channel, OUTBOXES))
            with tree_memory(exclude=sink.pid) as tree_peak:
                seconds, kib = run_send(make_project(folder / "all", args.contacts, port,
                                                     every_channel, OUTBOXES),
                                        ("fax", "email", "sms"))
            pages = len(list((folder / "all" / "outbox" / "fax").rglob("*.pdf")))
    finally:
        sink.terminate()
        sink.wait()
    print(f"broadcast of {args.contacts:,} contacts on fax, e-mail and SMS "
          f"({pages:,} personalised fax pages)")
    print(f"  dispatcher send, 3 channels: {seconds:7.1f} s, peak RSS {kib / 1024:.0f} MB, "
          f"with its fax workers {tree_peak[0] / 1024:.0f} MB "
          f"(target ≤ {TARGET_SECONDS} s at 10,000, ≤ {TARGET_MB} MB)")
    print(f"  baseline, e-mail alone     : {email_only:7.1f} s, peak RSS {email_kib / 1024:.0f} MB")
    print(f"  ratio (3 channels / e-mail alone): {seconds / email_only:.1f}")


if __name__ == "__main__":
    main()
