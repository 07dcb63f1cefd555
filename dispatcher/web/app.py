"""The HTTP application the daemon serves: Twilio's status callbacks (signed, checked
before anything is read from them) and a health check."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dispatcher.errors import LedgerUnavailable
from dispatcher.receipts import TwilioReports
from dispatcher.send import STATUS_PATH

log = logging.getLogger("dispatcher.web")


def make_app(public_url: str, twilio: TwilioReports | None) -> Starlette:
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

    return Starlette(routes=[
        Route(f"{STATUS_PATH}/{{delivery_id:int}}", twilio_status, methods=["POST"]),
        Route("/healthz", health),
    ])
