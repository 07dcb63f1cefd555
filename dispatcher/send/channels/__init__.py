"""Backends per channel, chosen by ``[channels.<channel>] backend``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from dispatcher.errors import SetupError, single
from dispatcher.send.channels.base import Backend, MailTransport, Outgoing, Receipt
from dispatcher.send.channels.email_gateway import EmailGatewayFax, gateway_recipient
from dispatcher.send.channels.envelope import DeliveryTokens, Verified, tag_id
from dispatcher.send.channels.hylafax import HylaFax
from dispatcher.send.channels.outbox import Outbox
from dispatcher.send.channels.smtp import SmtpPool
from dispatcher.send.channels.twilio_sms import STATUS_PATH, MessageStatus, TwilioSms
from dispatcher.table import Channel, Config

__all__ = [
    "STATUS_PATH",
    "Backend",
    "DeliveryTokens",
    "MailTransport",
    "MessageStatus",
    "Outgoing",
    "Receipt",
    "TwilioSms",
    "Verified",
    "gateway_recipient",
    "make_backends",
    "tag_id",
]


def make_backends(config: Config, channels: Iterable[Channel], env: Mapping[str, str]
                  ) -> dict[Channel, Backend]:
    """One backend per channel; SetupError if a credential it needs is missing. The
    deployment's key ([receipts] secret_file) is made here on first use."""
    tokens = DeliveryTokens.of(config)
    return {channel: _backend(config, channel, env, tokens) for channel in channels}


def _mail_transport(config: Config, env: Mapping[str, str], tokens: DeliveryTokens
                    ) -> SmtpPool | Outbox:
    email = config.channels[Channel.EMAIL]
    if email.backend == "smtp":
        return SmtpPool(email, env, tokens, config.helpdesk.reply_to)
    return Outbox(email.path, email.from_address, tokens, config.helpdesk.reply_to)


def _backend(config: Config, channel: Channel, env: Mapping[str, str],
             tokens: DeliveryTokens) -> Backend:
    settings = config.channels[channel]
    email_from = config.channels[Channel.EMAIL].from_address
    if settings.backend == "outbox":
        return Outbox(settings.path, email_from, tokens, config.helpdesk.reply_to)
    if channel is Channel.EMAIL:
        return _mail_transport(config, env, tokens)
    if settings.backend == "twilio":
        return TwilioSms(settings, env, _status_callback(config, tokens))
    if settings.backend == "hylafax":
        return HylaFax(settings, env)
    if settings.backend == "email-gateway":
        assert settings.gateway_address is not None
        transport: MailTransport = _mail_transport(config, env, tokens)
        return EmailGatewayFax(settings.gateway_address, email_from, transport, tokens)
    raise single(SetupError, f"[channels.{channel}] backend",
                 f"{settings.backend!r} is not available yet")


def _status_callback(config: Config, tokens: DeliveryTokens) -> Callable[[int], str] | None:
    """Each delivery's own status callback URL, signed; None without [http]."""
    if not config.http.enabled or config.http.public_url is None:
        return None
    base = f"{config.http.public_url}{STATUS_PATH}"
    return lambda delivery_id: f"{base}/{tokens.callback(delivery_id)}"
