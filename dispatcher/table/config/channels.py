"""`[channels.fax]`, `[channels.email]`, `[channels.sms]`, `[channels.voice]`: each
channel's shared keys, what
its messages are, and its backend's own keys (a key of another backend is an error naming
both)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dispatcher.table.config.model import (
    BACKENDS,
    DEFAULT_FROM,
    JAPANESE_VOICES,
    SECONDS_PER_MESSAGE,
    BackendSettings,
    ChannelConfig,
    GatewaySettings,
    HylafaxSettings,
    Messages,
    OutboxSettings,
    SmtpSettings,
    TwilioSettings,
)
from dispatcher.table.config.reader import Reader
from dispatcher.table.config.values import (
    env_name,
    gateway_address,
    http_url,
    mailbox,
    one_of,
    port_number,
    positive_number,
    sms_sender,
    text,
    whole_number,
)
from dispatcher.table.tomlpos import TablePath
from dispatcher.table.windows import Channel

_SHARED_KEYS = {"backend", "path", "concurrency", "rate_per_second"}


# the keys of a channel's own, whichever backend carries its messages
_MESSAGE_KEYS: Mapping[Channel, set[str]] = {
    Channel.FAX: {"seconds_per_fax"},
    Channel.EMAIL: {"from"},
    Channel.SMS: {"max_segments"},
    Channel.VOICE: {"voice"},
}


_BACKEND_KEYS: Mapping[str, set[str]] = {
    "outbox": set(),
    "smtp": {"host", "port", "security", "username_env", "password_env", "timeout_seconds",
             "ca_file"},
    "twilio": {"from", "messaging_service_sid", "base_url", "timeout_seconds"},
    "hylafax": {"host", "port", "user", "password_env", "max_dials", "kill_after_minutes",
                "poll_seconds", "modem"},
    "email-gateway": {"gateway_address"},
}


_DEFAULT_CONCURRENCY = {Channel.FAX: 4, Channel.EMAIL: 8, Channel.SMS: 4, Channel.VOICE: 1}


_SECURITY_PORTS = {"none": 25, "starttls": 587, "tls": 465}


def read_channels(r: Reader, data: dict[str, Any]
                  ) -> tuple[dict[Channel, ChannelConfig], Messages]:
    for name in data:
        if name not in [c.value for c in Channel]:
            r.problem(("channels", name), None, f"no channel named {name!r} "
                                           f"(channels are {', '.join(c.value for c in Channel)})")
    tables = {channel: r.table(data, ("channels",), channel.value) for channel in Channel}
    configs = {channel: _channel(r, channel, table) for channel, table in tables.items()}
    return configs, _messages(r, tables)


def _channel(r: Reader, channel: Channel, data: dict[str, Any]) -> ChannelConfig:
    t: TablePath = ("channels", channel.value)
    backend = r.value(data, t, "backend", one_of(BACKENDS[channel]), "outbox") or "outbox"
    _check_keys(r, t, channel, backend, data)
    return ChannelConfig(
        channel=channel,
        backend=_READERS[backend](r, t, data),
        path=r.path.parent / (r.value(data, t, "path", text, f"var/outbox/{channel}") or ""),
        concurrency=r.value(data, t, "concurrency", whole_number(1),
                            _DEFAULT_CONCURRENCY[channel]) or 1,
        rate_per_second=r.value(data, t, "rate_per_second", positive_number, 0.0) or None,
        seconds_per_message=_seconds_per_message(r, t, channel, data),
    )


def _check_keys(r: Reader, t: TablePath, channel: Channel, backend: str,
                data: dict[str, Any]) -> None:
    own = _SHARED_KEYS | _MESSAGE_KEYS[channel] | _BACKEND_KEYS[backend]
    for key in data:
        if key in own:
            continue
        others = [name for name in BACKENDS[channel] if key in _BACKEND_KEYS[name]]
        if others:
            r.problem(t, key, f"a key of the {' or '.join(others)} backend, and this "
                              f"channel's backend is {backend}")
        else:
            r.problem(t, key, f"unknown key (allowed here: {', '.join(sorted(own))})")


def _messages(r: Reader, tables: Mapping[Channel, dict[str, Any]]) -> Messages:
    email, sms, voice = tables[Channel.EMAIL], tables[Channel.SMS], tables[Channel.VOICE]
    return Messages(
        mail_from=r.value(email, ("channels", "email"), "from", mailbox, DEFAULT_FROM)
        or DEFAULT_FROM,
        sms_max_segments=r.value(sms, ("channels", "sms"), "max_segments", whole_number(1), 2)
        or 2,
        voice=r.value(voice, ("channels", "voice"), "voice", one_of(JAPANESE_VOICES),
                      JAPANESE_VOICES[0]) or JAPANESE_VOICES[0],
    )


def _seconds_per_message(r: Reader, t: TablePath, channel: Channel, data: dict[str, Any]
                         ) -> float:
    default = SECONDS_PER_MESSAGE[channel]
    if channel is not Channel.FAX:  # an estimate: only a fax line's is the operator's
        return default
    return r.value(data, t, "seconds_per_fax", positive_number, default) or default


def _outbox(r: Reader, t: TablePath, data: dict[str, Any]) -> OutboxSettings:
    return OutboxSettings()


def _smtp(r: Reader, t: TablePath, data: dict[str, Any]) -> SmtpSettings:
    security = r.value(data, t, "security", one_of(tuple(_SECURITY_PORTS)), "starttls")
    settings = SmtpSettings(
        host=r.value(data, t, "host", text, "localhost") or "localhost",
        port=r.value(data, t, "port", port_number,
                     _SECURITY_PORTS[security or "starttls"]) or 0,
        security=security or "starttls",
        username_env=r.value(data, t, "username_env", env_name, "") or None,
        password_env=r.value(data, t, "password_env", env_name, "") or None,
        timeout_seconds=r.value(data, t, "timeout_seconds", positive_number, 30.0) or 30.0,
        ca_file=_optional_file(r, data, t, "ca_file"),
    )
    # A key that is present but invalid has its own problem already; only absence is news.
    if settings.username_env and not settings.password_env:
        r.problem(t, "password_env", "needed with username_env")
    return settings


def _twilio(r: Reader, t: TablePath, data: dict[str, Any]) -> TwilioSettings:
    settings = TwilioSettings(
        from_number=r.value(data, t, "from", sms_sender, "") or None,
        messaging_service_sid=r.value(data, t, "messaging_service_sid", text, "") or None,
        base_url=r.value(data, t, "base_url", http_url, "") or None,
        timeout_seconds=r.value(data, t, "timeout_seconds", positive_number, 30.0) or 30.0,
    )
    if t[-1] == Channel.VOICE.value:  # a call comes from a number, never a service
        if settings.messaging_service_sid:
            r.problem(t, "messaging_service_sid", "SMS only: a call comes from a number")
        if "from" not in data:
            r.problem(t, "from", 'the twilio backend needs from = "+81…", the number calls '
                                 "come from")
    elif not {"from", "messaging_service_sid"} & data.keys():
        r.problem(t, "from", 'the twilio backend needs from = "+81…" or messaging_service_sid')
    return settings


def _hylafax(r: Reader, t: TablePath, data: dict[str, Any]) -> HylafaxSettings:
    default = HylafaxSettings()
    return HylafaxSettings(
        host=r.value(data, t, "host", text, default.host) or default.host,
        port=r.value(data, t, "port", port_number, default.port) or default.port,
        user=r.value(data, t, "user", text, default.user) or default.user,
        password_env=r.value(data, t, "password_env", env_name, "") or None,
        max_dials=r.value(data, t, "max_dials", whole_number(1), default.max_dials)
        or default.max_dials,
        kill_after_minutes=r.value(data, t, "kill_after_minutes", whole_number(1),
                                   default.kill_after_minutes) or default.kill_after_minutes,
        poll_seconds=r.value(data, t, "poll_seconds", positive_number, default.poll_seconds)
        or default.poll_seconds,
        modem=r.value(data, t, "modem", text, default.modem) or default.modem,
    )


def _gateway(r: Reader, t: TablePath, data: dict[str, Any]) -> GatewaySettings:
    if "gateway_address" not in data:
        r.problem(t, "gateway_address",
                  'the email-gateway backend needs gateway_address = "{number}@fax.example.jp"')
        return GatewaySettings()
    address = r.value(data, t, "gateway_address", gateway_address)
    return GatewaySettings(address) if address else GatewaySettings()


_READERS: Mapping[str, Callable[[Reader, TablePath, dict[str, Any]], BackendSettings]] = {
    OutboxSettings.name: _outbox,
    SmtpSettings.name: _smtp,
    TwilioSettings.name: _twilio,
    HylafaxSettings.name: _hylafax,
    GatewaySettings.name: _gateway,
}


def _optional_file(r: Reader, data: dict[str, Any], t: TablePath, key: str) -> Path | None:
    value = r.value(data, t, key, text, "")
    if not value:
        return None
    path = r.path.parent / value
    if not path.is_file():
        r.problem(t, key, f"{path}: no such file")
    return path
