"""Backends per channel, chosen by ``[channels.<channel>] backend``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dispatcher.errors import SetupError, single
from dispatcher.send.channels.base import Backend, MailTransport, Outgoing, Receipt
from dispatcher.send.channels.email_gateway import EmailGatewayFax, gateway_recipient
from dispatcher.send.channels.envelope import ReturnPaths, return_paths, tag_id
from dispatcher.send.channels.hylafax import HylaFax, job_failure, submit_error
from dispatcher.send.channels.outbox import Outbox
from dispatcher.send.channels.smtp import SmtpPool
from dispatcher.send.channels.twilio_sms import STATUS_PATH, MessageStatus, TwilioSms
from dispatcher.table import Channel, Config

__all__ = [
    "STATUS_PATH",
    "Backend",
    "MailTransport",
    "MessageStatus",
    "Outgoing",
    "Receipt",
    "ReturnPaths",
    "TwilioSms",
    "gateway_recipient",
    "job_failure",
    "make_backends",
    "return_paths",
    "submit_error",
    "tag_id",
]


def make_backends(config: Config, channels: Iterable[Channel], env: Mapping[str, str]
                  ) -> dict[Channel, Backend]:
    """One backend per channel; SetupError if a credential it needs is missing."""
    backends: dict[Channel, Backend] = {}
    paths = return_paths(config.receipts.email, env)
    for channel in channels:
        backends[channel] = _backend(config, channel, env, paths)
    return backends


def _mail_transport(config: Config, env: Mapping[str, str], paths: ReturnPaths | None
                    ) -> SmtpPool | Outbox:
    email = config.channels[Channel.EMAIL]
    if email.backend == "smtp":
        return SmtpPool(email, env, paths)
    return Outbox(email.path, email.from_address, paths)


def _backend(config: Config, channel: Channel, env: Mapping[str, str],
             paths: ReturnPaths | None) -> Backend:
    settings = config.channels[channel]
    email_from = config.channels[Channel.EMAIL].from_address
    if settings.backend == "outbox":
        return Outbox(settings.path, email_from, paths)
    if channel is Channel.EMAIL:
        return _mail_transport(config, env, paths)
    if settings.backend == "twilio":
        public_url = config.http.public_url if config.http.enabled else None
        return TwilioSms(settings, env,
                         f"{public_url}{STATUS_PATH}" if public_url else None)
    if settings.backend == "hylafax":
        return HylaFax(settings, env)
    if settings.backend == "email-gateway":
        assert settings.gateway_address is not None
        transport: MailTransport = _mail_transport(config, env, paths)
        return EmailGatewayFax(settings.gateway_address, email_from, transport)
    raise single(SetupError, f"[channels.{channel}] backend",
                 f"{settings.backend!r} is not available yet")
