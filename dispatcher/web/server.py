"""uvicorn inside the daemon's own event loop, on a socket bound here (so a port in use is
a clear error, not uvicorn's exit), leaving SIGTERM and SIGINT to the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from dispatcher.errors import SetupError, single

log = logging.getLogger("dispatcher.http")

GRACEFUL_SECONDS = 10.0
# A connection that has sent no request (its headers unfinished, or idle between requests)
# for this long is closed: uvicorn keeps a connection that never sends anything forever,
# so a few hundred of them would take every socket the daemon may open.
IDLE_CONNECTION_SECONDS = 15.0
SWEEP_SECONDS = 2.0
_UNSEEN = object()  # a connection the sweeper has not seen idle yet


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon handles the signals and stops this server itself


class WebServer:
    """``await start()`` listens; ``await stop()`` finishes the requests in flight."""

    def __init__(self, app: ASGIApp, host: str, port: int,
                 graceful_seconds: float = GRACEFUL_SECONDS,
                 trusted_proxies: tuple[str, ...] = ()) -> None:
        self._host, self._port = host, port
        # a request still open after graceful_seconds (a browser's event stream) is closed.
        # X-Forwarded-For only from the proxies named: uvicorn's default believes any client
        # on 127.0.0.1, which then chooses its address for the login limits.
        self._server = _EmbeddedServer(uvicorn.Config(
            app, log_config=None, lifespan="off", access_log=False,
            timeout_graceful_shutdown=round(graceful_seconds),
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None))
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listening = _bind(self._host, self._port)
        self._task = asyncio.create_task(self._server.serve(sockets=[listening]),
                                         name="http")
        self._sweeper = asyncio.create_task(self._close_idle(), name="http-idle")

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._task is not None:
            await self._task

    async def _close_idle(self) -> None:
        """Every ``SWEEP_SECONDS``: close each connection that has had no request in
        progress for ``IDLE_CONNECTION_SECONDS`` (a request under way, an event stream
        included, is never cut). uvicorn keeps a connection's last request (``cycle``)
        after its response: idle means no request yet, or the last one answered, with its
        clock from when that was first seen."""
        loop = asyncio.get_running_loop()
        idle_since: dict[object, tuple[object, float]] = {}  # connection: (its cycle, since)
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self._sweep(idle_since, loop.time())
            except Exception:  # never silently: a sweeper gone would leave them open
                log.exception("closing idle connections failed; trying again")

    def _sweep(self, idle_since: dict[object, tuple[object, float]], now: float) -> None:
        connections = set(self._server.server_state.connections)
        for connection in connections:
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not getattr(cycle, "response_complete", True):
                idle_since.pop(connection, None)  # a request under way
                continue
            seen, since = idle_since.get(connection, (_UNSEEN, now))
            if seen is not cycle:  # first seen idle, or idle after another request
                idle_since[connection] = (cycle, now)
            elif now - since >= IDLE_CONNECTION_SECONDS:
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.close()
        for gone in set(idle_since) - connections:
            del idle_since[gone]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise single(SetupError, "[http] listen",
                     f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listening.listen(128)
    listening.setblocking(False)
    return listening
