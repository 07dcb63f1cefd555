"""The ``twilio`` SMS backend: the real twilio SDK, asynchronously (``create_async``).

A 429 is always safe to retry: it is about the account, not the message, so it pauses the
channel like an unreachable Twilio does. A 5xx on a send may have been processed, so it is
uncertain, not a clean retry. Any other 4xx is permanent and keeps Twilio's error code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from dispatcher.errors import (
    ChannelError,
    PermanentError,
    RefusedError,
    UnavailableError,
    UncertainError,
)
from dispatcher.send.channels.base import Backend, Outgoing, Receipt, secret
from dispatcher.table import TwilioSettings

STATUS_PATH = "/twilio/status"  # where the daemon's HTTP server takes Twilio's reports
ACCOUNT_SID_ENV = "TWILIO_ACCOUNT_SID"
AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"


@dataclass(frozen=True)
class MessageStatus:
    """What Twilio says of a message now: ``delivered``, ``undelivered`` with 30003, ..."""

    sid: str
    status: str
    error_code: str | None
    error_message: str | None


def twilio_account(env: Mapping[str, str]) -> tuple[str, str]:
    """The account SID and auth token from the environment; SetupError if either is not
    set."""
    return (secret(env, ACCOUNT_SID_ENV, "[channels.sms] twilio"),
            secret(env, AUTH_TOKEN_ENV, "[channels.sms] twilio"))


class TwilioSms(Backend):
    name: ClassVar[str] = "twilio"

    def __init__(self, config: TwilioSettings, env: Mapping[str, str],
                 status_callback: Callable[[int], str] | None = None) -> None:
        self._config = config
        # a delivery's "{public_url}/twilio/status/{signed id}": its status reports come there
        self._status_callback = status_callback
        self._account_sid, self._auth_token = twilio_account(env)
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    async def start(self) -> None:
        # aiohttp binds its session to the running loop, so the client is made here.
        self._http = AsyncTwilioHttpClient(timeout=self._config.timeout_seconds)
        self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        if self._config.base_url:
            self._client.api.base_url = self._config.base_url

    async def send(self, outgoing: Outgoing) -> Receipt:
        if self._client is None:
            await self.start()
        assert self._client is not None
        to = outgoing.message.address
        try:
            message = await self._client.api.v2010.account.messages.create_async(
                to=to, body=outgoing.message.body, **self._sender(),
                **self._callback(outgoing.delivery_id))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _channel_error(exc, to) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UnavailableError(f"cannot reach Twilio: {exc}", None, to) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UncertainError(f"no answer from Twilio after sending: {exc!r}", None,
                                 to) from exc
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            # a 2xx that is not Twilio's JSON object (a proxy's page): the SDK cannot read it
            raise UncertainError(f"unreadable answer from Twilio after sending: {exc!r}", None,
                                 to) from exc
        return Receipt(message.sid)

    @property
    def auth_token(self) -> str:
        """What Twilio signs its status callbacks with."""
        return self._auth_token

    async def fetch(self, sid: str) -> MessageStatus:
        """The message's status now; UnavailableError when Twilio cannot be asked now (a
        429, no connection), PermanentError when it does not know the message."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            message = await self._client.api.v2010.account.messages(sid).fetch_async()
        except (TwilioRestException, TwilioServiceException) as exc:
            error = _channel_error(exc, sid)
            raise (error if isinstance(error, UnavailableError | PermanentError)
                   else UnavailableError(str(error), error.code, sid)) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UnavailableError(f"cannot reach Twilio: {exc!r}", None, sid) from exc
        code = message.error_code
        return MessageStatus(sid, str(message.status or ""),
                             str(code) if code not in (None, "") else None,
                             message.error_message)

    def _callback(self, delivery_id: int) -> dict[str, str]:
        if self._status_callback is None:
            return {}
        return {"status_callback": self._status_callback(delivery_id)}

    async def close(self) -> None:
        if self._http is not None and self._http.session is not None:
            await self._http.session.close()

    def _sender(self) -> dict[str, Any]:
        if self._config.messaging_service_sid:
            return {"messaging_service_sid": self._config.messaging_service_sid}
        return {"from_": self._config.from_number}


def _channel_error(exc: TwilioRestException | TwilioServiceException, to: str) -> ChannelError:
    code = str(exc.code) if exc.code is not None else None
    text = f"Twilio {exc.status}: {getattr(exc, 'msg', None) or getattr(exc, 'title', '')}"
    if exc.status == 429:
        return UnavailableError(text, code, to)
    if exc.status == 401:  # the account's SID or auth token is wrong: no message can go
        return RefusedError(text, code, to)
    if exc.status >= 500:
        return UncertainError(text, code, to)
    return PermanentError(text, code, to)
