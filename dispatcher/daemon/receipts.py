"""What the daemon runs beside its notices to learn what arrived: the HTTP server for
Twilio's status callbacks ([http] listen) and the poll of SMS statuses still unknown.

Both are set up from the config the daemon started with; a change to [http] or
[receipts] takes effect at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from dispatcher.ledger import Ledger
from dispatcher.logs import event
from dispatcher.receipts import TwilioPoller, TwilioReports
from dispatcher.send import Clock, TwilioSms, make_backends
from dispatcher.table import Channel, Config
from dispatcher.web import WebServer, make_app

log = logging.getLogger("dispatcher.daemon")


@dataclass
class ReceiptServices:
    config: Config
    ledger: Ledger
    env: Mapping[str, str]
    clock: Clock
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _server: WebServer | None = field(default=None, init=False)
    _twilio: TwilioSms | None = field(default=None, init=False)
    _poller: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        reports = self._twilio_reports()
        http = self.config.http
        if http.enabled:
            assert http.host is not None and http.public_url is not None
            self._server = WebServer(make_app(http.public_url, reports), http.host, http.port)
            await self._server.start()
            event(log, logging.INFO, "http listening", listen=f"{http.host}:{http.port}",
                  public_url=http.public_url, twilio_callbacks=reports is not None)
        if reports is not None and self._twilio is not None:
            poller = TwilioPoller(reports, self._twilio)
            self._poller = asyncio.create_task(poller.run(self._stopping), name="sms-poll")

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            await self._server.stop()
        if self._poller is not None:
            await self._poller
        if self._twilio is not None:
            await self._twilio.close()

    def _twilio_reports(self) -> TwilioReports | None:
        """Twilio's statuses become reports when SMS goes through Twilio."""
        if self.config.channels[Channel.SMS].backend != "twilio":
            return None
        backend = make_backends(self.config, [Channel.SMS], self.env)[Channel.SMS]
        assert isinstance(backend, TwilioSms)
        self._twilio = backend
        return TwilioReports(self.ledger, self.config.receipts.sms, self.config.retry,
                             backend.auth_token, self.clock)
