"""`dispatcher run` under systemd: the notify protocol on a real AF_UNIX datagram socket,
and the shipped unit file as `systemd-analyze verify` reads it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from dispatcher.daemon import Notifier
from tests.helpers import ROOT, start_daemon, stop, timed_window

HANG_GUARD_SECONDS = 120  # against a hang, not a measure of speed


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """What systemd listens on: a datagram socket (its path short, as AF_UNIX wants)."""
    folder = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))
    path = str(folder / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(HANG_GUARD_SECONDS)
    try:
        yield listener, path
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def messages_until(listener: socket.socket, wanted: str) -> list[str]:
    """The assignments received, one per line, up to the first datagram holding ``wanted``."""
    received: list[str] = []
    while True:
        lines = listener.recv(4096).decode().splitlines()
        received += lines
        if wanted in lines:
            return received


def test_the_daemon_says_ready_pets_the_watchdog_tells_its_next_notice_and_stopping(
        project: Path, notify_socket: tuple[socket.socket, str]) -> None:
    listener, path = notify_socket
    timed_window(project, datetime(2031, 7, 18, 1, 0), datetime(2031, 7, 18, 2, 0), None)
    log = project.parent / "daemon.log"
    daemon = start_daemon(project, log, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    try:
        first = messages_until(listener, "READY=1")
        assert first[0] == "READY=1", first  # once the ledger is open and the jobs made
        # the advance notice, two weeks before, in the configured zone
        assert "STATUS=next: 2021-07-19-emoney/planned/announce at 2031-07-04 10:00 JST" in first
        pinged = [messages_until(listener, "WATCHDOG=1") for _ in range(3)]
        assert all(lines[-1] == "WATCHDOG=1" for lines in pinged)
        daemon.terminate()
        assert "STOPPING=1" in messages_until(listener, "STOPPING=1")
    finally:
        stop(daemon, log)


def test_a_watchdog_meant_for_another_process_is_not_petted(
        project: Path, notify_socket: tuple[socket.socket, str]) -> None:
    """WATCHDOG_PID names the process systemd watches (sd_watchdog_enabled(3))."""
    listener, path = notify_socket
    log = project.parent / "daemon.log"
    daemon = start_daemon(project, log, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000",
                                         "WATCHDOG_PID": "1"})
    try:
        messages_until(listener, "READY=1")
        daemon.terminate()
        seen = messages_until(listener, "STOPPING=1")
    finally:
        stop(daemon, log)
    assert "WATCHDOG=1" not in seen, seen


async def test_each_look_pings_the_watchdog_as_it_starts_and_while_it_waits(
        notify_socket: tuple[socket.socket, str]) -> None:
    """A look that waits (on a busy ledger) keeps the watchdog fed (it was pinged only
    after a look, once half the timeout had passed: one look of 16 s of a 30 s watchdog
    got the daemon killed mid-send); a new look pings at once, however recent the last."""
    listener, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}, os.getpid())
    notifier.after_tick("idle")
    assert messages_until(listener, "WATCHDOG=1")[0] == "READY=1"
    released = asyncio.Event()

    async def a_slow_look() -> None:
        async with notifier.watching():
            await released.wait()

    look = asyncio.create_task(a_slow_look())
    pings = [await asyncio.to_thread(messages_until, listener, "WATCHDOG=1")
             for _ in range(3)]
    released.set()
    await look
    notifier.close()
    assert pings == [["WATCHDOG=1"]] * 3


def test_the_shipped_unit_file_verifies(tmp_path: Path) -> None:
    """As installed in /opt/dispatcher, here this checkout (verify wants the command to
    exist)."""
    text = (ROOT / "contrib" / "dispatcher.service").read_text(encoding="utf-8")
    unit = tmp_path / "dispatcher.service"
    unit.write_text(text.replace("/opt/dispatcher", str(ROOT)), encoding="utf-8")
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "scripts/install --test installs systemd"
    checked = subprocess.run([analyze, "verify", "--man=no", str(unit)],
                             capture_output=True, text=True, check=False, cwd=tmp_path)
    assert checked.returncode == 0 and not checked.stderr, checked.stderr
    for setting in ("Type=notify", "WatchdogSec=30", "Restart=on-failure",
                    "StateDirectory=dispatcher", "ProtectSystem=strict",
                    "NoNewPrivileges=yes", "PrivateTmp=yes", "User=dispatcher"):
        assert setting in text.splitlines(), setting
