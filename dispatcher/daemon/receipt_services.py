"""What the daemon runs beside its notices to learn what arrived: the HTTP server for
Twilio's status callbacks and calls ([http] listen), the poll of SMS statuses still
unknown, and the bounce mailbox ([receipts.email] imap_url).

Both are set up from the config the daemon started with; a change to [http] or
[receipts] takes effect at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from dispatcher.clock import Clock
from dispatcher.ledger import Ledger
from dispatcher.logs import Failures, event
from dispatcher.receipts import (
    CallReports,
    ImapAccount,
    ImapIntake,
    MailMatcher,
    TwilioPoller,
    TwilioReports,
)
from dispatcher.send import (
    DeliveryTokens,
    TwilioSms,
    call_urls,
    make_backends,
    twilio_account,
)
from dispatcher.table import Channel, Config, TableKeeper, TwilioSettings
from dispatcher.web import Console, Metrics, WebServer, make_app

log = logging.getLogger("dispatcher.daemon")


@dataclass
class ReceiptServices:
    config: Config
    ledger: Ledger
    env: Mapping[str, str]
    clock: Clock
    table: TableKeeper | None = None  # the daemon's, which its console shares
    metrics: Metrics | None = None  # served at /metrics when [http] metrics is on
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _server: WebServer | None = field(default=None, init=False)
    _console: Console | None = field(default=None, init=False)
    _twilio: TwilioSms | None = field(default=None, init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)

    async def start(self) -> None:
        reports = self._twilio_reports()
        http = self.config.http
        if http.enabled:
            assert http.host is not None and http.public_url is not None
            console = Console.of(self.config, self.ledger, self.clock,
                                 http.public_url.startswith("https://"), self.table)
            self._console = console
            endpoint = (self.metrics.endpoint(self.ledger, console.desk.inputs, self.clock)
                        if self.metrics is not None and http.metrics else None)
            app = make_app(http.public_url, reports, console, self.config.publish.path,
                           self._call_reports(console), endpoint,
                           proxies_named=bool(http.trusted_proxies))
            self._server = WebServer(app, http.host, http.port,
                                     trusted_proxies=http.trusted_proxies)
            await self._server.start()
            event(log, logging.INFO, "http listening", listen=f"{http.host}:{http.port}",
                  public_url=http.public_url, twilio_callbacks=reports is not None)
        if reports is not None and self._twilio is not None:
            poller = TwilioPoller(reports, self._twilio)
            self._tasks.append(asyncio.create_task(poller.run(self._stopping),
                                                   name="sms-poll"))
        intake = self._bounce_mailbox()
        if intake is not None:
            self._tasks.append(asyncio.create_task(self._read_mailbox(intake),
                                                   name="bounce-mailbox"))

    async def stop(self, timeout: float) -> None:
        """Stop within about ``timeout`` seconds whatever is open: the console's event
        streams end and its sends stop first, then the server finishes what is in flight."""
        self._stopping.set()
        if self._console is not None:
            await self._console.close(timeout)
        if self._server is not None:
            await self._server.stop()
        await asyncio.gather(*self._tasks)
        if self._twilio is not None:
            await self._twilio.close()

    def _twilio_reports(self) -> TwilioReports | None:
        """Twilio's statuses become reports when SMS goes through Twilio."""
        if not isinstance(self.config.channels[Channel.SMS].backend, TwilioSettings):
            return None
        backend = make_backends(self.config, [Channel.SMS], self.env)[Channel.SMS]
        assert isinstance(backend, TwilioSms)
        self._twilio = backend
        return TwilioReports(self.ledger, self.config.receipts.sms, self.config.retry,
                             backend.auth_token, DeliveryTokens.of(self.config), self.clock)

    def _call_reports(self, console: Console) -> CallReports | None:
        """Calls' TwiML and callbacks, when calls go through Twilio; what a call says comes
        from the table the console reads (the daemon's in force)."""
        voice = self.config.channels[Channel.VOICE]
        urls = call_urls(self.config, DeliveryTokens.of(self.config))
        if not isinstance(voice.backend, TwilioSettings) or urls is None:
            return None
        auth_token = twilio_account(self.env, "[channels.voice] twilio")[1]
        return CallReports(self.ledger, self.config.retry, auth_token,
                           DeliveryTokens.of(self.config), urls, self.clock,
                           console.desk.inputs)

    def _bounce_mailbox(self) -> ImapIntake | None:
        settings = self.config.receipts.email
        account = ImapAccount.of(settings, self.env)
        if account is None:
            return None
        matcher = MailMatcher(self.ledger, self.config, DeliveryTokens.of(self.config))
        return ImapIntake(account, matcher, settings.processed_folder, self.clock)

    async def _read_mailbox(self, intake: ImapIntake) -> None:
        """Every ``poll_seconds``; a mailbox that does not answer is logged with its
        traceback, then counted while it stays so, and logged again when it answers."""
        failures = Failures(log, "reading the bounce mailbox")
        while not self._stopping.is_set():
            try:
                tally = await intake.poll_once()
                failures.recovered()
                if tally["recorded"]:
                    event(log, logging.INFO, "bounce mailbox read", **dict(tally))
            except Exception as exc:  # the mailbox or the ledger away: try again later
                failures.failed(exc, retry_in_seconds=self.config.receipts.email.poll_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       self.config.receipts.email.poll_seconds)
