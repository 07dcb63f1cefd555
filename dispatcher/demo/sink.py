"""An SMTP server that accepts every message: the demo's mail catcher, and the sink the
tests and the benchmarks send to. Nothing here is used to send real notices."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

# A bound against a server that never starts; a busy machine can take seconds.
SERVER_START_SECONDS = 120.0


@dataclass(frozen=True)
class Arrival:
    """One message as the server accepted it, and when (``time.time()``)."""

    recipients: tuple[str, ...]
    content: bytes
    at: float
    sender: str = ""  # the envelope's MAIL FROM: where a bounce would go
    options: tuple[str, ...] = ()  # MAIL and RCPT parameters (DSN's ENVID, NOTIFY, ...)


class MailSink:
    """An aiosmtpd handler that keeps every message it accepts, and files each as
    ``NNNNN.eml`` under ``folder`` if one is given. Safe to read while the server runs."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._arrivals: list[Arrival] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._arrivals)

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def recipients(self) -> list[str]:
        return [r for arrival in self.arrivals() for r in arrival.recipients]

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        return self.accept(envelope)

    def accept(self, envelope: Any) -> str:
        """Keep the message; the SMTP reply, with a queue id as a real server gives one."""
        arrival = Arrival(tuple(envelope.rcpt_tos), envelope.content, time.time(),
                          envelope.mail_from or "",
                          (*envelope.mail_options, *envelope.rcpt_options))
        with self._lock:
            self._arrivals.append(arrival)
            number = len(self._arrivals)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{number:05d}.eml").write_bytes(arrival.content)
        return f"250 2.0.0 Ok: queued as Q{number:06d}"


@contextlib.contextmanager
def mail_server(handler: object, port: int | None = None, **options: Any) -> Iterator[int]:
    """An SMTP server on 127.0.0.1 (on ``port``, or a free one) for ``handler``; yields its
    port and stops it afterwards. ``options`` go to aiosmtpd's Controller (TLS, say)."""
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            ready_timeout=SERVER_START_SECONDS, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
