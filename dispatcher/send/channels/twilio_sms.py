"""The ``twilio`` SMS backend: the real twilio SDK, asynchronously (``create_async``); its
errors as ``twilio_api`` maps them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from dispatcher.errors import PermanentError, UnavailableError
from dispatcher.send.channels.base import Outgoing, Receipt
from dispatcher.send.channels.twilio_api import TwilioApi, channel_error
from dispatcher.table import TwilioSettings

STATUS_PATH = "/twilio/status"  # where the daemon's HTTP server takes Twilio's reports


@dataclass(frozen=True)
class MessageStatus:
    """What Twilio says of a message now: ``delivered``, ``undelivered`` with 30003, ..."""

    sid: str
    status: str
    error_code: str | None
    error_message: str | None


class TwilioSms(TwilioApi):
    name: ClassVar[str] = "twilio"

    def __init__(self, config: TwilioSettings, env: Mapping[str, str],
                 status_callback: Callable[[int], str] | None = None) -> None:
        super().__init__(config, env, "[channels.sms] twilio")
        # a delivery's "{public_url}/twilio/status/{signed id}": its status reports come there
        self._status_callback = status_callback

    async def send(self, outgoing: Outgoing) -> Receipt:
        client = await self.client()
        to = outgoing.message.address
        message = await self.created(to, client.api.v2010.account.messages.create_async(
            to=to, body=outgoing.message.body, **self._sender(),
            **self._callback(outgoing.delivery_id)))
        return Receipt(message.sid)

    async def fetch(self, sid: str) -> MessageStatus:
        """The message's status now; UnavailableError when Twilio cannot be asked now (a
        429, no connection), PermanentError when it does not know the message."""
        client = await self.client()
        try:
            message = await client.api.v2010.account.messages(sid).fetch_async()
        except (TwilioRestException, TwilioServiceException) as exc:
            error = channel_error(exc, sid)
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

    def _sender(self) -> dict[str, Any]:
        if self._config.messaging_service_sid:
            return {"messaging_service_sid": self._config.messaging_service_sid}
        return {"from_": self._config.from_number}
