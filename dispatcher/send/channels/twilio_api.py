"""What the Twilio backends share: the account from the environment, the real SDK's async
client (``AsyncTwilioHttpClient``), and how Twilio's answers become typed errors.

A 429 is always safe to retry: it is about the account, not the message, so it pauses the
channel like an unreachable Twilio does. A 5xx on a create may have been processed, so it
is uncertain, not a clean retry. A 401 refuses the login; any other 4xx is permanent and
keeps Twilio's error code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TypeVar

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
from dispatcher.send.channels.base import Backend, secret
from dispatcher.table import TwilioSettings

ACCOUNT_SID_ENV = "TWILIO_ACCOUNT_SID"
AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"
T = TypeVar("T")


def twilio_account(env: Mapping[str, str], key: str = "[channels.sms] twilio"
                   ) -> tuple[str, str]:
    """The account SID and auth token from the environment; SetupError naming ``key`` if
    either is not set."""
    return secret(env, ACCOUNT_SID_ENV, key), secret(env, AUTH_TOKEN_ENV, key)


class TwilioApi(Backend):
    """A backend that talks to Twilio's REST API with the account in the environment."""

    def __init__(self, config: TwilioSettings, env: Mapping[str, str], key: str) -> None:
        self._config = config
        self._account_sid, self._auth_token = twilio_account(env, key)
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    async def start(self) -> None:
        # aiohttp binds its session to the running loop, so the client is made here.
        self._http = AsyncTwilioHttpClient(timeout=self._config.timeout_seconds)
        self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        if self._config.base_url:
            self._client.api.base_url = self._config.base_url

    @property
    def auth_token(self) -> str:
        """What Twilio signs its callbacks with."""
        return self._auth_token

    async def client(self) -> Client:
        if self._client is None:
            await self.start()
        assert self._client is not None
        return self._client

    async def close(self) -> None:
        if self._http is not None and self._http.session is not None:
            await self._http.session.close()

    @staticmethod
    async def created(to: str, request: Awaitable[T]) -> T:
        """What a create request to Twilio answered, or the ChannelError it amounts to."""
        try:
            return await request
        except (TwilioRestException, TwilioServiceException) as exc:
            raise channel_error(exc, to) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UnavailableError(f"cannot reach Twilio: {exc}", None, to) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UncertainError(f"no answer from Twilio after sending: {exc!r}", None,
                                 to) from exc
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            # a 2xx that is not Twilio's JSON object (a proxy's page): the SDK cannot read it
            raise UncertainError(f"unreadable answer from Twilio after sending: {exc!r}", None,
                                 to) from exc


def channel_error(exc: TwilioRestException | TwilioServiceException, to: str) -> ChannelError:
    code = str(exc.code) if exc.code is not None else None
    text = f"Twilio {exc.status}: {getattr(exc, 'msg', None) or getattr(exc, 'title', '')}"
    if exc.status == 429:
        return UnavailableError(text, code, to)
    if exc.status == 401:  # the account's SID or auth token is wrong: nothing can go
        return RefusedError(text, code, to)
    if exc.status >= 500:
        return UncertainError(text, code, to)
    return PermanentError(text, code, to)
