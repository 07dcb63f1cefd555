"""The sections of `config.toml` other than the channels and the windows: [dispatcher],
[sender], [helpdesk], [[affected_services]], [retry], [publish], [alerts], [confirm],
[console]."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.table.config.model import (
    DEFAULT_ANNOUNCE_AT,
    DEFAULT_ANNOUNCE_DAYS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_LEDGER,
    DEFAULT_OVERRUN_MINUTES,
    DEFAULT_TIMEZONE,
    Alerts,
    ConfirmSettings,
    ConsoleSettings,
    Helpdesk,
    Publish,
    Sender,
    Settings,
)
from dispatcher.table.config.reader import Reader
from dispatcher.table.config.values import (
    boolean,
    days_or_off,
    email_addresses,
    http_url,
    mailbox,
    mobile_numbers,
    one_of,
    optional_text,
    percent,
    phase_names,
    positive_number,
    printed_number,
    text,
    time_of_day,
    whole_number,
    zone,
)
from dispatcher.table.contacts import DEFAULT_INVALID_ROWS_PERCENT
from dispatcher.table.leads import parse_lead
from dispatcher.table.retry import RetryPolicy
from dispatcher.table.tomlpos import TablePath
from dispatcher.table.windows import AffectedService, Channel, Step

_SETTINGS_KEYS = {"timezone", "contacts", "templates", "ledger", "catch_up_minutes",
                  "lease_seconds", "announce_days_before", "announce_at",
                  "overrun_after_minutes", "invalid_rows_percent"}


_RETRY_KEYS = {"initial_delay_seconds", "max_delay_seconds", "max_attempts", "retry_uncertain",
               "end_notice_hours", "give_up_after_minutes"}


def read_settings(r: Reader, data: dict[str, Any]) -> Settings:
    t: TablePath = ("dispatcher",)
    r.unknown_keys(data, t, _SETTINGS_KEYS)
    base = r.path.parent
    tz = r.value(data, t, "timezone", zone, ZoneInfo(DEFAULT_TIMEZONE))
    contacts = r.value(data, t, "contacts", text, "contacts")
    templates = r.value(data, t, "templates", text, "templates")
    ledger = r.value(data, t, "ledger", text, DEFAULT_LEDGER)
    catch_up = r.value(data, t, "catch_up_minutes", whole_number(0), 30)
    lease = r.value(data, t, "lease_seconds", positive_number, DEFAULT_LEASE_SECONDS)
    announce = r.value(data, t, "announce_days_before", days_or_off, DEFAULT_ANNOUNCE_DAYS)
    announce_at = r.value(data, t, "announce_at", time_of_day, DEFAULT_ANNOUNCE_AT)
    overrun = r.value(data, t, "overrun_after_minutes", whole_number(0),
                      DEFAULT_OVERRUN_MINUTES)
    invalid = r.value(data, t, "invalid_rows_percent", percent, DEFAULT_INVALID_ROWS_PERCENT)
    return Settings(
        timezone=tz or ZoneInfo(DEFAULT_TIMEZONE),
        contacts_dir=base / (contacts or "contacts"),
        templates_dir=base / (templates or "templates"),
        ledger_url=ledger or DEFAULT_LEDGER,
        catch_up_minutes=30 if catch_up is None else catch_up,
        lease_seconds=lease or DEFAULT_LEASE_SECONDS,
        announce_days_before=DEFAULT_ANNOUNCE_DAYS if announce is None else announce,
        announce_at=announce_at or DEFAULT_ANNOUNCE_AT,
        overrun_after_minutes=DEFAULT_OVERRUN_MINUTES if overrun is None else overrun,
        invalid_rows_percent=DEFAULT_INVALID_ROWS_PERCENT if invalid is None else invalid,
    )


def read_sender(r: Reader, data: dict[str, Any]) -> Sender | None:
    t: TablePath = ("sender",)
    if not data:
        r.problem((), "sender", "missing table [sender] (organisation, service, website)")
        return None
    r.unknown_keys(data, t, {"organisation", "service", "website", "fax", "centre"})
    organisation = r.value(data, t, "organisation", text)
    service = r.value(data, t, "service", text)
    website = r.value(data, t, "website", _website, "")
    fax = r.value(data, t, "fax", printed_number, "")
    centre = r.value(data, t, "centre", optional_text, "")
    if organisation is None or service is None:
        return None
    return Sender(organisation, service, website or "", fax or "",
                  centre or default_centre(service))


def _website(value: Any) -> str:
    """The sender's web site, printed and linked in every notice and on the published
    page: an http(s) URL (never ``javascript:``), kept as written, or empty."""
    site = optional_text(value)
    if site and not re.match(r"(?i)^https?://[^/\s]+", site):
        raise ValueError(f"{site!r} is not an http(s) URL")
    return site or ""


def default_centre(service: str) -> str:
    """What the notices call the system maintained when ``[sender] centre`` is not set: the
    service's centre (``J-Mups センター``), or the service itself when its name says it is
    one already (``サンプルPay センター``: never ``… センター センター``)."""
    return service if service.rstrip().endswith("センター") else f"{service} センター"


def read_helpdesk(r: Reader, data: dict[str, Any]) -> Helpdesk | None:
    t: TablePath = ("helpdesk",)
    if not data:
        r.problem((), "helpdesk", "missing table [helpdesk] (name, phone, hours)")
        return None
    r.unknown_keys(data, t, {"name", "phone", "hours", "email"})
    name = r.value(data, t, "name", text)
    phone = r.value(data, t, "phone", text)
    hours = r.value(data, t, "hours", text)
    email = r.optional(data, t, "email", mailbox)
    if name is None or phone is None or hours is None:
        return None
    return Helpdesk(name, phone, hours, email)


def read_affected(r: Reader, items: list[dict[str, Any]]) -> tuple[AffectedService, ...]:
    services = []
    for index, data in enumerate(items):
        t: TablePath = ("affected_services", index)
        r.unknown_keys(data, t, {"name", "note"})
        name = r.value(data, t, "name", text)
        note = r.value(data, t, "note", optional_text, "")
        if name is not None:
            services.append(AffectedService(name, note or ""))
    return tuple(services)


def read_retry(r: Reader, data: dict[str, Any]) -> RetryPolicy:
    t: TablePath = ("retry",)
    r.unknown_keys(data, t, _RETRY_KEYS)
    default = RetryPolicy()
    initial = r.value(data, t, "initial_delay_seconds", positive_number,
                      default.initial_delay_seconds)
    ceiling = r.value(data, t, "max_delay_seconds", positive_number, default.max_delay_seconds)
    attempts = r.optional(data, t, "max_attempts", whole_number(1))
    uncertain = r.value(data, t, "retry_uncertain", boolean, default.retry_uncertain)
    end_hours = r.value(data, t, "end_notice_hours", positive_number, default.end_notice_hours)
    give_up = r.optional(data, t, "give_up_after_minutes", positive_number)
    policy = RetryPolicy(initial or default.initial_delay_seconds,
                         ceiling or default.max_delay_seconds,
                         attempts,
                         bool(uncertain),
                         end_hours or default.end_notice_hours,
                         give_up)
    if policy.max_delay_seconds < policy.initial_delay_seconds:
        r.problem(t, "max_delay_seconds", "must not be less than initial_delay_seconds")
    return policy


def read_publish(r: Reader, data: dict[str, Any]) -> Publish:
    t: TablePath = ("publish",)
    r.unknown_keys(data, t, {"path", "base_url", "refresh_minutes"})
    path = r.optional(data, t, "path", text)
    base_url = r.optional(data, t, "base_url", http_url)
    refresh = r.value(data, t, "refresh_minutes", whole_number(1), 60) or 60
    return Publish(r.path.parent / path if path else None,
                   base_url if base_url is None or base_url.endswith("/") else base_url + "/",
                   timedelta(minutes=refresh))


def read_alerts(r: Reader, data: dict[str, Any]) -> Alerts:
    t: TablePath = ("alerts",)
    r.unknown_keys(data, t, {"email", "sms"})
    return Alerts(r.value(data, t, "email", email_addresses, ()) or (),
                  r.value(data, t, "sms", mobile_numbers, ()) or ())


def read_confirm(r: Reader, data: dict[str, Any]) -> ConfirmSettings:
    t: TablePath = ("confirm",)
    r.unknown_keys(data, t, {"phases", "callout_after", "steps"})
    phases = r.optional(data, t, "phases", phase_names) or ()
    steps = [_step(r, (*t, "steps", i), item)
             for i, item in enumerate(r.tables(data, t, "steps"))]
    callout = r.optional(data, t, "callout_after", parse_lead)
    if callout is not None:
        if any(s is not None and s.channel is Channel.VOICE for s in steps):
            r.problem(t, "callout_after", "the steps already call (channel = \"voice\"): "
                                          "one call-out per notice")
        steps.append(Step(callout, Channel.VOICE))
    kept = tuple(sorted((s for s in steps if s is not None), key=lambda s: s.after))
    channels = [s.channel for s in kept]
    if len(set(channels)) < len(channels):
        r.problem(t, "steps", "each step goes on a channel of its own (one resend each)")
    return ConfirmSettings(phases, kept)


def _step(r: Reader, t: TablePath, data: dict[str, Any]) -> Step | None:
    r.unknown_keys(data, t, {"after", "channel"})
    after = r.value(data, t, "after", parse_lead)
    channel = r.value(data, t, "channel", one_of(tuple(c.value for c in Channel)))
    return Step(after, Channel(channel)) if after is not None and channel else None


def read_console(r: Reader, data: dict[str, Any]) -> ConsoleSettings:
    t: TablePath = ("console",)
    r.unknown_keys(data, t, {"users_file", "secret_file", "session_hours", "login_attempts"})
    base = r.path.parent
    users = r.value(data, t, "users_file", text, "var/console-users") or "var/console-users"
    secret = r.value(data, t, "secret_file", text, "var/console-secret") or "var/console-secret"
    hours = r.value(data, t, "session_hours", positive_number, 12.0) or 12.0
    attempts = r.value(data, t, "login_attempts", whole_number(1), 5) or 5
    return ConsoleSettings(base / users, base / secret, hours, attempts)
