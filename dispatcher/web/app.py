"""The HTTP application the daemon (and `dispatcher console`) serves: Twilio's status
callbacks (signed, checked before anything is read from them), a health check, and the
operator's console behind its login. Every response carries the security headers."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.errors import LedgerUnavailable
from dispatcher.receipts import TwilioReports
from dispatcher.send import STATUS_PATH
from dispatcher.web.console import SECURITY_HEADERS, Console

log = logging.getLogger("dispatcher.web")


def make_app(public_url: str, twilio: TwilioReports | None, console: Console | None = None
             ) -> ASGIApp:
    """``public_url`` is how Twilio reaches this server: the URL it signs is built on it."""

    async def twilio_status(request: Request) -> Response:
        if twilio is None:
            return PlainTextResponse("SMS does not go through Twilio here\n", status_code=404)
        body = (await request.body()).decode("utf-8", "replace")
        params = dict(parse_qsl(body, keep_blank_values=True))
        query = f"?{request.url.query}" if request.url.query else ""
        url = f"{public_url}{request.url.path}{query}"
        signature = request.headers.get("X-Twilio-Signature", "")
        try:
            applied = await twilio.callback(url, params, signature,
                                            int(request.path_params["delivery_id"]))
        except LedgerUnavailable:
            return PlainTextResponse("ledger unavailable, ask again later\n", status_code=503)
        if applied is None:
            return PlainTextResponse("bad signature\n", status_code=403)
        return PlainTextResponse(f"{applied.value}\n")

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    routes: list[BaseRoute] = [
        Route(f"{STATUS_PATH}/{{delivery_id:int}}", twilio_status, methods=["POST"]),
        Route("/healthz", health),
    ]
    if console is not None:
        routes += console.routes()
    return SecurityHeaders(Starlette(routes=routes))


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
