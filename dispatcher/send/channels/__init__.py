"""Backends per channel, chosen by ``[channels.<channel>] backend``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from dispatcher.errors import SetupError, single
from dispatcher.send.channels.base import Backend, MailTransport, Outgoing, Receipt
from dispatcher.send.channels.email_gateway import EmailGatewayFax, gateway_recipient
from dispatcher.send.channels.envelope import DeliveryTokens, Verified, tag_id
from dispatcher.send.channels.fax_results import WRONG_NUMBER, FaxResult, fax_result
from dispatcher.send.channels.hylafax import HylaFax, hylafax_password
from dispatcher.send.channels.outbox import Outbox
from dispatcher.send.channels.smtp import SmtpPool, smtp_login
from dispatcher.send.channels.twilio_api import twilio_account
from dispatcher.send.channels.twilio_sms import STATUS_PATH, MessageStatus, TwilioSms
from dispatcher.send.channels.twilio_voice import (
    CALL_PATH,
    CALL_STATUS_PATH,
    GATHER_PATH,
    CallUrls,
    TwilioVoice,
)
from dispatcher.table import (
    Channel,
    Config,
    GatewaySettings,
    HylafaxSettings,
    OutboxSettings,
    SmtpSettings,
    TwilioSettings,
)

__all__ = [
    "CALL_PATH",
    "CALL_STATUS_PATH",
    "GATHER_PATH",
    "STATUS_PATH",
    "WRONG_NUMBER",
    "Backend",
    "Backends",
    "CallUrls",
    "DeliveryTokens",
    "FaxResult",
    "MailTransport",
    "MessageStatus",
    "Outgoing",
    "Receipt",
    "TwilioSms",
    "TwilioVoice",
    "Verified",
    "call_urls",
    "check_credentials",
    "fax_result",
    "gateway_recipient",
    "make_backends",
    "tag_id",
    "twilio_account",
]


class Backends(dict[Channel, Backend]):
    """The backends made for one send, by channel. Whoever makes them closes them, once the
    send is over: ``async with make_backends(...) as backends``."""

    async def __aenter__(self) -> Backends:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for backend in self.values():
            await backend.close()


def make_backends(config: Config, channels: Iterable[Channel], env: Mapping[str, str]
                  ) -> Backends:
    """One backend per channel; SetupError if a credential it needs is missing. Nothing is
    connected yet. The deployment's key ([receipts] secret_file) is made here on first use."""
    tokens = DeliveryTokens.of(config)
    return Backends({channel: _backend(config, channel, env, tokens) for channel in channels})


def check_credentials(config: Config, channels: Iterable[Channel], env: Mapping[str, str]
                      ) -> None:
    """SetupError if a credential the backends of ``channels`` need is not in ``env``;
    nothing is made, written or connected."""
    for channel in channels:
        settings = config.channels[channel].backend
        if isinstance(settings, GatewaySettings):  # its mail goes through the e-mail channel
            settings = config.channels[Channel.EMAIL].backend
        if isinstance(settings, SmtpSettings):
            smtp_login(settings, env)
        elif isinstance(settings, TwilioSettings):
            twilio_account(env, f"[channels.{channel}] twilio")
        elif isinstance(settings, HylafaxSettings):
            hylafax_password(settings, env)


def _mail_transport(config: Config, env: Mapping[str, str], tokens: DeliveryTokens
                    ) -> SmtpPool | Outbox:
    email = config.channels[Channel.EMAIL]
    mail_from, reply_to = config.messages.mail_from, config.helpdesk.reply_to
    if isinstance(email.backend, SmtpSettings):
        return SmtpPool(email.backend, email.concurrency, mail_from, env, tokens, reply_to)
    return Outbox(email.path, mail_from, tokens, reply_to)


def _backend(config: Config, channel: Channel, env: Mapping[str, str],
             tokens: DeliveryTokens) -> Backend:
    settings = config.channels[channel]
    backend = settings.backend
    if isinstance(backend, OutboxSettings):
        return Outbox(settings.path, config.messages.mail_from, tokens,
                      config.helpdesk.reply_to, config.messages.voice)
    if channel is Channel.EMAIL:
        return _mail_transport(config, env, tokens)
    if isinstance(backend, TwilioSettings) and channel is Channel.SMS:
        return TwilioSms(backend, env, _status_callback(config, tokens))
    if isinstance(backend, TwilioSettings):
        return TwilioVoice(backend, env, config.messages.voice, call_urls(config, tokens))
    if isinstance(backend, HylafaxSettings):
        return HylaFax(backend, env, config.sender, config.settings.timezone)
    if isinstance(backend, GatewaySettings):
        return EmailGatewayFax(backend.gateway_address, config.messages.mail_from,
                               _mail_transport(config, env, tokens), tokens)
    raise single(SetupError, f"[channels.{channel}] backend",
                 f"{backend.name!r} is not available yet")


def call_urls(config: Config, tokens: DeliveryTokens) -> CallUrls | None:
    """Where Twilio fetches a call's TwiML and reports on it; None without [http]."""
    if not config.http.enabled or config.http.public_url is None:
        return None
    return CallUrls(config.http.public_url, tokens.callback)


def _status_callback(config: Config, tokens: DeliveryTokens) -> Callable[[int], str] | None:
    """Each delivery's own status callback URL, signed; None without [http]."""
    if not config.http.enabled or config.http.public_url is None:
        return None
    base = f"{config.http.public_url}{STATUS_PATH}"
    return lambda delivery_id: f"{base}/{tokens.callback(delivery_id)}"
