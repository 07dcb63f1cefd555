"""The sections about what comes back: [receipts] with its sms, email and fax_gateway
tables, and [http], where the daemon listens for Twilio's status callbacks."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from dispatcher.table.config.reader import Reader
from dispatcher.table.config.values import (
    boolean,
    env_name,
    http_url,
    positive_number,
    text,
    text_list,
)
from dispatcher.table.receipt_settings import (
    DEFAULT_SECRET_FILE,
    EmailReceipts,
    FaxGatewayReceipts,
    Http,
    Receipts,
    SmsReceipts,
)
from dispatcher.table.tomlpos import TablePath


def read_receipts(r: Reader, data: dict[str, Any]) -> Receipts:
    t: TablePath = ("receipts",)
    r.unknown_keys(data, t, {"grace_minutes", "secret_file", "old_secret_days", "sms", "email",
                             "fax_gateway"})
    default = Receipts()
    grace = r.value(data, t, "grace_minutes", positive_number, default.grace_minutes)
    secret = r.value(data, t, "secret_file", text, DEFAULT_SECRET_FILE) or DEFAULT_SECRET_FILE
    old_days = r.value(data, t, "old_secret_days", positive_number, default.old_secret_days)
    return Receipts(grace or default.grace_minutes, r.path.parent / secret,
                    default.old_secret_days if old_days is None else old_days,
                    _sms(r, r.table(data, t, "sms")),
                    _email(r, r.table(data, t, "email")),
                    _fax_gateway(r, r.table(data, t, "fax_gateway")))


def _sms(r: Reader, data: dict[str, Any]) -> SmsReceipts:
    t: TablePath = ("receipts", "sms")
    r.unknown_keys(data, t, {"poll_after_minutes", "poll_per_second", "retried_codes",
                             "final_codes"})
    d = SmsReceipts()
    after = r.value(data, t, "poll_after_minutes", positive_number, d.poll_after_minutes)
    rate = r.value(data, t, "poll_per_second", positive_number, d.poll_per_second)
    retried = r.value(data, t, "retried_codes", _codes, d.retried_codes) or ()
    final = r.value(data, t, "final_codes", _codes, d.final_codes) or ()
    both = sorted(set(retried) & set(final))
    if both:
        r.problem(t, "final_codes", f"{', '.join(both)} also listed in retried_codes")
    return SmsReceipts(after or d.poll_after_minutes, rate or d.poll_per_second, retried, final)


def _email(r: Reader, data: dict[str, Any]) -> EmailReceipts:
    t: TablePath = ("receipts", "email")
    if "token_key_env" in data:
        r.problem(t, "token_key_env", "is no longer read: every token is signed with the key "
                                      "in [receipts] secret_file, made on first use; remove "
                                      "this line")
    r.unknown_keys(data, t, {"bounce_address", "token_key_env", "imap_url", "allow_plaintext",
                             "imap_user_env", "imap_password_env", "processed_folder",
                             "poll_seconds"})
    d = EmailReceipts()
    imap_url = r.optional(data, t, "imap_url", _imap_url)
    plaintext = bool(r.value(data, t, "allow_plaintext", boolean, False))
    if imap_url is not None and imap_url.startswith("imap://") and not plaintext:
        r.problem(t, "imap_url", f"{imap_url!r} would send the mailbox's login in clear: use "
                                 "imaps:// (port 993), or set allow_plaintext = true for a "
                                 "server on this machine")
    return EmailReceipts(
        bounce_address=r.optional(data, t, "bounce_address", _bounce_address),
        imap_url=imap_url,
        allow_plaintext=plaintext,
        imap_user_env=r.value(data, t, "imap_user_env", env_name, d.imap_user_env)
        or d.imap_user_env,
        imap_password_env=r.value(data, t, "imap_password_env", env_name,
                                  d.imap_password_env) or d.imap_password_env,
        processed_folder=r.value(data, t, "processed_folder", text, d.processed_folder)
        or d.processed_folder,
        poll_seconds=r.value(data, t, "poll_seconds", positive_number, d.poll_seconds)
        or d.poll_seconds)


def _fax_gateway(r: Reader, data: dict[str, Any]) -> FaxGatewayReceipts:
    t: TablePath = ("receipts", "fax_gateway")
    r.unknown_keys(data, t, {"delivered_pattern", "failed_pattern"})
    return FaxGatewayReceipts(r.optional(data, t, "delivered_pattern", _pattern),
                              r.optional(data, t, "failed_pattern", _pattern))


def read_http(r: Reader, data: dict[str, Any]) -> Http:
    t: TablePath = ("http",)
    r.unknown_keys(data, t, {"listen", "public_url", "metrics", "trusted_proxies"})
    listen = r.optional(data, t, "listen", _host_port)
    public_url = r.optional(data, t, "public_url", http_url)
    metrics = bool(r.value(data, t, "metrics", boolean, True))
    proxies: tuple[str, ...] = r.optional(data, t, "trusted_proxies", _networks) or ()
    if listen is None:
        if public_url is not None:
            r.problem(t, "public_url", 'needs listen as well, the address the daemon '
                                       'listens on, e.g. listen = "127.0.0.1:8025"')
        return Http(public_url=public_url, metrics=metrics, trusted_proxies=proxies)
    host, port = listen
    return Http(host, port, public_url or f"http://{host}:{port}", metrics, proxies)


def _networks(value: Any) -> tuple[str, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]``: addresses or networks (no names, no ``*``)."""
    found = text_list(value)
    for item in found:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network, e.g. "
                             '"127.0.0.1" or "10.0.0.0/8"') from None
    return found


def _codes(value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                       for v in value):
        value = [str(v) for v in value]
    codes = text_list(value)
    for code in codes:
        if not code.isdigit():
            raise ValueError(f"{code!r} is not a Twilio error code (digits, e.g. 30003)")
    return codes


def _bounce_address(value: Any) -> str:
    address = text(value)
    local, at, domain = address.partition("@")
    if address.count("{token}") != 1 or "{token}" not in local or not at or not domain:
        raise ValueError(f"{address!r} must hold {{token}} once before the @, "
                         'e.g. "bounces+{token}@example.jp"')
    return address


def _imap_url(value: Any) -> str:
    url = text(value)
    if not re.match(r"^imaps?://[^/\s]+(/[^\s]*)?$", url):
        raise ValueError(f"{url!r} is not an IMAP URL, e.g. imaps://mail.example.jp/INBOX")
    return url


def _pattern(value: Any) -> re.Pattern[str]:
    source = text(value)
    try:
        return re.compile(source, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"{source!r} is not a regular expression: {exc}") from None


def _host_port(value: Any) -> tuple[str, int]:
    listen = text(value)
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{listen!r} must be host:port, e.g. \"127.0.0.1:8025\"")
    return host.strip("[]"), int(port)
