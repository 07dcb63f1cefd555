"""systemd's notify protocol (sd_notify(3)) without a library: each message is one datagram
to the AF_UNIX socket that ``NOTIFY_SOCKET`` names (``@`` for the abstract namespace).
Not under systemd (no ``NOTIFY_SOCKET``), every call does nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from dispatcher.logs import event

log = logging.getLogger("dispatcher.daemon")
LONGEST_LOOK_SECONDS = 300.0  # a look of the tick loop taking longer has hung


class Notifier:
    """READY=1 once, STATUS= when it changes, WATCHDOG=1 every half of ``WATCHDOG_USEC``
    (when ``WATCHDOG_PID``, if set, is this process), STOPPING=1 on a stop."""

    def __init__(self, env: Mapping[str, str], pid: int) -> None:
        path = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog_interval = _watchdog_interval(env, pid)
        self._socket: socket.socket | None = None
        self._ready = False
        self._status: str | None = None
        self._pinged_at: float | None = None
        self._failing = False

    def after_tick(self, status: str) -> None:
        """After each look of the tick loop: ready after the first, the status if it
        changed, and the watchdog when it is due (a loop that stops looking is restarted)."""
        lines = []
        if not self._ready:
            self._ready = True
            lines.append("READY=1")
        if status != self._status:
            self._status = status
            lines.append(f"STATUS={status}")
        now = time.monotonic()
        if self.watchdog_interval is not None and (
                self._pinged_at is None or now - self._pinged_at >= self.watchdog_interval):
            self._pinged_at = now
            lines.append("WATCHDOG=1")
        self._send(lines)

    def ping(self) -> None:
        """WATCHDOG=1 now (at the start of each look, whatever the last one's time), once
        READY=1 was said (start-up has its own timeout)."""
        if self.watchdog_interval is not None and self._ready:
            self._pinged_at = time.monotonic()
            self._send(["WATCHDOG=1"])

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Around one look of the tick loop: a ping as it starts, and every half interval
        while it waits (on a ledger that is busy, say), for at most
        ``LONGEST_LOOK_SECONDS``: a look stuck longer than that is a hang, and systemd
        restarts the daemon."""
        self.ping()
        if self.watchdog_interval is None:
            yield
            return
        pinger = asyncio.create_task(self._ping_while_looking(self.watchdog_interval / 2))
        try:
            yield
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)

    async def _ping_while_looking(self, every: float) -> None:
        deadline = time.monotonic() + LONGEST_LOOK_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(every)
            self.ping()

    def pause(self, seconds: float) -> float:
        """How long the loop may wait before its next look: never past the watchdog's due."""
        if self.watchdog_interval is None:
            return seconds
        return min(seconds, self.watchdog_interval)

    def stopping(self) -> None:
        self._send(["STOPPING=1", "STATUS=stopping: the sends in flight finish"])

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, lines: list[str]) -> None:
        if not self._address or not lines:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:  # systemd gone or the socket full: the next message tries
            if not self._failing:
                event(log, logging.WARNING, "systemd notification failed",
                      socket=self._address.replace("\0", "@"), error=str(exc))
            self._failing = True
            return
        self._failing = False


def _watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Half the watchdog's timeout (sd_watchdog_enabled(3)), or None when it is off."""
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        watched = int(env.get("WATCHDOG_PID", str(pid)))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 and watched == pid else None


def status_line(scheduled: Mapping[str, datetime], sending: int, zone: ZoneInfo) -> str:
    """What `systemctl status` shows: the notices being sent and the next one due."""
    parts = [f"{sending} notice(s) sending"] if sending else []
    if scheduled:
        key, at = min(scheduled.items(), key=lambda item: item[1])
        parts.append(f"next: {key} at {at.astimezone(zone):%Y-%m-%d %H:%M %Z}")
    else:
        parts.append("no notice scheduled")
    return "; ".join(parts)
