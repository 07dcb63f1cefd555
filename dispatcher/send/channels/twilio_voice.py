"""The ``twilio`` voice backend: a call through Twilio's Calls API (the real SDK's
``calls.create_async``).

With the daemon's HTTP server ([http]), the call's TwiML is at a signed URL the daemon
serves, so that what is said can depend on who answered (``MachineDetection`` is
``DetectMessageEnd``: a machine hears the message once, after its greeting), and the
call's end and the key pressed come back as signed callbacks. Without it, the call carries
the TwiML a person hears inline, and nothing comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from dispatcher.render import call_twiml
from dispatcher.send.channels.base import Outgoing, Receipt
from dispatcher.send.channels.twilio_api import TwilioApi
from dispatcher.table import TwilioSettings

CALL_PATH = "/twilio/call"  # the TwiML of a delivery's call
CALL_STATUS_PATH = "/twilio/call-status"  # how the call ended
GATHER_PATH = "/twilio/gather"  # the key the contact pressed
RING_SECONDS = 30  # then the call is no-answer


@dataclass(frozen=True)
class CallUrls:
    """A delivery's signed URLs on the daemon: ``{public_url}{path}/{signed id}``."""

    public_url: str
    token: Callable[[int], str]

    def url(self, path: str, delivery_id: int) -> str:
        return f"{self.public_url}{path}/{self.token(delivery_id)}"


class TwilioVoice(TwilioApi):
    name: ClassVar[str] = "twilio"

    def __init__(self, config: TwilioSettings, env: Mapping[str, str], voice: str,
                 urls: CallUrls | None) -> None:
        super().__init__(config, env, "[channels.voice] twilio")
        self._voice = voice
        self._urls = urls

    async def send(self, outgoing: Outgoing) -> Receipt:
        client = await self.client()
        to = outgoing.message.address
        call = await self.created(to, client.api.v2010.account.calls.create_async(
            to=to, from_=self._config.from_number, timeout=RING_SECONDS,
            **self._what_is_said(outgoing)))
        return Receipt(call.sid)

    def _what_is_said(self, outgoing: Outgoing) -> dict[str, Any]:
        if self._urls is None:
            script = outgoing.message.script
            assert script is not None, "a call is sent with its script"
            return {"twiml": call_twiml(script, self._voice, None)}
        delivery = outgoing.delivery_id
        return {"url": self._urls.url(CALL_PATH, delivery), "method": "POST",
                "status_callback": self._urls.url(CALL_STATUS_PATH, delivery),
                "status_callback_method": "POST",
                "machine_detection": "DetectMessageEnd"}
