"""`[channels.fax]`, `[channels.email]`, `[channels.sms]`: each channel's backend and the
keys that backend takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from dispatcher.table.config.model import BACKENDS, DEFAULT_FROM, HYLAFAX_PORT, ChannelConfig
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

_COMMON_CHANNEL_KEYS = {"backend", "path", "concurrency", "rate_per_second"}


_CHANNEL_KEYS: Mapping[Channel, set[str]] = {
    Channel.FAX: _COMMON_CHANNEL_KEYS | {"gateway_address", "host", "port", "user",
                                         "password_env", "max_dials", "kill_after_minutes",
                                         "poll_seconds", "modem", "seconds_per_fax"},
    Channel.EMAIL: _COMMON_CHANNEL_KEYS | {"host", "port", "security", "username_env",
                                           "password_env", "from", "timeout_seconds",
                                           "ca_file"},
    Channel.SMS: _COMMON_CHANNEL_KEYS | {"from", "messaging_service_sid", "base_url",
                                         "max_segments", "timeout_seconds"},
}


_DEFAULT_CONCURRENCY = {Channel.FAX: 4, Channel.EMAIL: 8, Channel.SMS: 4}


_SECURITY_PORTS = {"none": 25, "starttls": 587, "tls": 465}


def read_channels(r: Reader, data: dict[str, Any]) -> dict[Channel, ChannelConfig]:
    configs = {}
    for name in data:
        if name not in [c.value for c in Channel]:
            r.problem(("channels", name), None, f"no channel named {name!r} "
                                           f"(channels are {', '.join(c.value for c in Channel)})")
    for channel in Channel:
        configs[channel] = _channel(r, channel, r.table(data, ("channels",), channel.value))
    return configs


def _channel(r: Reader, channel: Channel, data: dict[str, Any]) -> ChannelConfig:
    t: TablePath = ("channels", channel.value)
    r.unknown_keys(data, t, _CHANNEL_KEYS[channel])
    backend = r.value(data, t, "backend", one_of(BACKENDS[channel]), "outbox") or "outbox"
    security = r.value(data, t, "security", one_of(tuple(_SECURITY_PORTS)), "starttls")
    base = ChannelConfig(
        channel=channel,
        backend=backend,
        path=r.path.parent / (r.value(data, t, "path", text, f"var/outbox/{channel}") or ""),
        concurrency=r.value(data, t, "concurrency", whole_number(1),
                            _DEFAULT_CONCURRENCY[channel]) or 1,
        rate_per_second=r.value(data, t, "rate_per_second", positive_number, 0.0) or None,
        max_segments=r.value(data, t, "max_segments", whole_number(1), 2) or 2,
        host=r.value(data, t, "host", text, "localhost") or "localhost",
        port=r.value(data, t, "port", port_number,
                     HYLAFAX_PORT if channel is Channel.FAX
                     else _SECURITY_PORTS[security or "starttls"]),
        security=security or "starttls",
        username_env=r.value(data, t, "username_env", env_name, "") or None,
        password_env=r.value(data, t, "password_env", env_name, "") or None,
        timeout_seconds=r.value(data, t, "timeout_seconds", positive_number, 30.0) or 30.0,
        base_url=r.value(data, t, "base_url", http_url, "") or None,
        messaging_service_sid=r.value(data, t, "messaging_service_sid", text, "") or None,
        gateway_address=r.value(data, t, "gateway_address", gateway_address, "") or None,
        ca_file=_optional_path(r, data, t, "ca_file"),
        user=r.value(data, t, "user", text, "dispatcher") or "dispatcher",
        max_dials=r.value(data, t, "max_dials", whole_number(1), 3) or 3,
        kill_after_minutes=r.value(data, t, "kill_after_minutes", whole_number(1), 60) or 60,
        poll_seconds=r.value(data, t, "poll_seconds", positive_number, 10.0) or 10.0,
        modem=r.value(data, t, "modem", text, "any") or "any",
        seconds_per_fax=r.value(data, t, "seconds_per_fax", positive_number, 50.0) or 50.0,
    )
    from_address = _from_address(r, t, channel, backend, data)
    _require_backend_keys(r, t, base, from_address, data)
    return replace(base, from_address=from_address)


def _optional_path(r: Reader, data: dict[str, Any], t: TablePath, key: str) -> Path | None:
    value = r.value(data, t, key, text, "")
    if not value:
        return None
    path = r.path.parent / value
    if not path.is_file():
        r.problem(t, key, f"{path}: no such file")
    return path


def _from_address(r: Reader, t: TablePath, channel: Channel, backend: str,
                  data: dict[str, Any]) -> str:
    if channel is Channel.EMAIL:
        return r.value(data, t, "from", mailbox, DEFAULT_FROM) or DEFAULT_FROM
    if channel is Channel.SMS:
        return r.value(data, t, "from", sms_sender, "") or ""
    return ""


def _require_backend_keys(r: Reader, t: TablePath, config: ChannelConfig,
                          from_address: str, data: dict[str, Any]) -> None:
    # A key that is present but invalid has its own problem already; only absence is news.
    if config.username_env and not config.password_env:
        r.problem(t, "password_env", "needed with username_env")
    if config.backend == "twilio" and not (from_address or config.messaging_service_sid) \
            and not {"from", "messaging_service_sid"} & data.keys():
        r.problem(t, "from", 'the twilio backend needs from = "+81…" or messaging_service_sid')
    if config.backend == "email-gateway" and "gateway_address" not in data:
        r.problem(t, "gateway_address",
                  'the email-gateway backend needs gateway_address = "{number}@fax.example.jp"')
