"""The HTTP application the daemon (and `dispatcher console`) serves: Twilio's status
callbacks (signed, checked before anything is read from them), a health check, the
contacts' confirmation links (``/c/{code}``) and the operator's console behind its login.
Every response carries the security headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.errors import LedgerUnavailable
from dispatcher.ledger import Applied
from dispatcher.receipts import INBOUND_PATH, CallReports, SmsReplies, TwilioReports
from dispatcher.send import CALL_PATH, CALL_STATUS_PATH, GATHER_PATH, STATUS_PATH
from dispatcher.web.confirm import ConfirmDesk
from dispatcher.web.console import Console
from dispatcher.web.gate import SECURITY_HEADERS

log = logging.getLogger("dispatcher.web")
Endpoint = Callable[[Request], Awaitable[Response]]


PUBLISHED = {"index.html": "text/html; charset=utf-8", "maintenance.ics": "text/calendar",
             "feed.atom": "application/atom+xml"}
# The published page carries its own <style>: allowed there, and nothing else.
PUBLISHED_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def make_app(public_url: str, twilio: TwilioReports | None, console: Console | None = None,
             published: Path | None = None, calls: CallReports | None = None,
             metrics: Endpoint | None = None, proxies_named: bool = False) -> ASGIApp:
    """``public_url`` is how Twilio reaches this server: the URL it signs is built on it.
    ``published``: the folder `publish` writes, served to anyone under /maintenance/.
    ``calls``: the voice calls' TwiML and callbacks, when calls go through Twilio.
    ``metrics``: the Prometheus metrics' handler, served without a login.
    ``proxies_named``: whether ``[http] trusted_proxies`` names any (if not, a request
    with X-Forwarded-For is logged once: behind a proxy, every client has its address)."""

    def signed(request: Request, body: bytes) -> tuple[str, dict[str, str], str, str]:
        """What a Twilio request is checked with: the URL it signed, its form, its
        signature, and our token in its path."""
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        query = f"?{request.url.query}" if request.url.query else ""
        return (f"{public_url}{request.url.path}{query}", params,
                request.headers.get("X-Twilio-Signature", ""),
                request.path_params.get("token", ""))

    async def twilio_status(request: Request) -> Response:
        if twilio is None:
            return PlainTextResponse("SMS does not go through Twilio here\n", status_code=404)
        try:
            applied = await twilio.callback(*signed(request, await request.body()))
        except LedgerUnavailable:
            return PlainTextResponse("ledger unavailable, ask again later\n", status_code=503)
        if applied is None:
            return PlainTextResponse("bad signature\n", status_code=403)
        return PlainTextResponse(f"{applied.value}\n")

    async def sms_reply(request: Request) -> Response:
        if twilio is None:
            return PlainTextResponse("SMS does not go through Twilio here\n", status_code=404)
        url, params, signature, _ = signed(request, await request.body())
        replies = SmsReplies(twilio.ledger, twilio.auth_token, twilio.clock)
        try:
            answer = await replies.inbound(url, params, signature)
        except LedgerUnavailable:
            return PlainTextResponse("ledger unavailable, ask again later\n", status_code=503)
        if answer is None:
            return PlainTextResponse("bad signature\n", status_code=403)
        return Response(answer, media_type="application/xml")

    def call_route(path: str, kind: str) -> Route:
        async def answer(request: Request) -> Response:
            if calls is None:
                return PlainTextResponse("calls do not go through Twilio here\n",
                                         status_code=404)
            handler = {"twiml": calls.twiml, "gather": calls.gather, "status": calls.status}
            try:
                said = await handler[kind](*signed(request, await request.body()))
            except LedgerUnavailable:
                return PlainTextResponse("ledger unavailable, ask again later\n",
                                         status_code=503)
            if said is None:
                return PlainTextResponse("bad signature\n", status_code=403)
            if isinstance(said, str):
                return Response(said, media_type="application/xml")
            if said is Applied.EARLY:  # the call is not recorded as placed yet: again later
                return PlainTextResponse("early\n", status_code=503)
            return PlainTextResponse(f"{said.value}\n")
        return Route(f"{path}/{{token}}", answer, methods=["POST"])

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def published_file(request: Request) -> Response:
        name = request.path_params.get("name") or "index.html"
        path = published / name if published is not None else None
        if name not in PUBLISHED or path is None or not path.is_file():
            return PlainTextResponse("not found\n", status_code=404)
        return Response(path.read_bytes(), media_type=PUBLISHED[name],
                        headers={"Content-Security-Policy": PUBLISHED_CSP,
                                 "Cache-Control": "max-age=60"})

    routes: list[BaseRoute] = [
        Route(f"{STATUS_PATH}/{{token}}", twilio_status, methods=["POST"]),
        Route(INBOUND_PATH, sms_reply, methods=["POST"]),
        call_route(CALL_PATH, "twiml"),
        call_route(GATHER_PATH, "gather"),
        call_route(CALL_STATUS_PATH, "status"),
        Route("/healthz", health),
        Route("/maintenance/", published_file),
        Route("/maintenance/{name}", published_file),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", metrics))
    if console is not None:  # the confirmation links' page reads the console's table
        routes += console.routes() + ConfirmDesk(console.desk).routes(console.gate)
    app: ASGIApp = BodyLimit(Starlette(routes=routes))
    return SecurityHeaders(app if proxies_named else ForwardedUnheeded(app))


class ForwardedUnheeded:
    """Logs once that a request came with X-Forwarded-For while ``[http]
    trusted_proxies`` names no proxy: behind a reverse proxy, every client then has the
    proxy's address, and five wrong logins from anyone block every operator."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.told = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.told and scope["type"] == "http" and any(
                name == b"x-forwarded-for" for name, _ in scope.get("headers") or []):
            self.told = True
            log.warning("a request came with X-Forwarded-For, which is not believed: "
                        "[http] trusted_proxies names no proxy. Behind a reverse proxy, set "
                        'it to the proxy\'s address (e.g. trusted_proxies = ["127.0.0.1"]), '
                        "or every client counts as the proxy for the login limits")
        await self.app(scope, receive, send)


# The most a request's body may hold, before anything reads it: Twilio's callbacks are a
# few hundred bytes, the console's forms (an update's text) a few kB. A body past it is
# refused (413) as it arrives: a 200 MB POST never grows the daemon that sends the notices.
TWILIO_BODY_BYTES = 16 * 1024
FORM_BODY_BYTES = 64 * 1024
BODY_SECONDS = 15.0  # a body not sent within this is refused (408): no slow drip held


class BodyLimit:
    """Refuses (413) a request whose body is past its route's limit: by its
    Content-Length at once, or, sent in chunks, as soon as the bytes read pass it. The body
    (at most the limit) is read here, then handed to the route as it came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def limit(path: str) -> int:
        return TWILIO_BODY_BYTES if path.startswith("/twilio/") else FORM_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(str(scope["path"]))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(BODY_SECONDS):  # a body sent a byte at a time: cut
                complete = await _read_body(receive, chunks, limit)
        except TimeoutError:
            await _refuse(send, 408, f"request body not sent within {BODY_SECONDS:g} s")
            return
        if complete is None:  # the client went away
            return
        if not complete:
            await _too_large(send, limit)
            return
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what comes after: a disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_body(receive: Receive, chunks: list[bytes], limit: int) -> bool | None:
    """Read the body into ``chunks``: True once whole, False past ``limit``, None if the
    client went away."""
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return False
        if not message.get("more_body", False):
            return True


async def _too_large(send: Send, limit: int) -> None:
    await _refuse(send, 413, f"request body too large (at most {limit:,} bytes)")


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = f"{reason}\n".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the Content-Security-Policy and its companions to every response (pure ASGI,
    so a streamed response is not held back)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
