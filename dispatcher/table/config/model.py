"""What `config.toml` declares, as frozen, typed objects, and its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formataddr, parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatcher.table.receipt_settings import Http, Receipts
from dispatcher.table.retry import RetryPolicy
from dispatcher.table.windows import Channel, Window

DEFAULT_TIMEZONE = "Asia/Tokyo"


DEFAULT_LEDGER = "sqlite:///var/ledger.sqlite3"


DEFAULT_FROM = "dispatcher@localhost"


DEFAULT_LEASE_SECONDS = 120.0


DEFAULT_ANNOUNCE_DAYS = 14.0


HYLAFAX_PORT = 4559


BACKENDS: Mapping[Channel, tuple[str, ...]] = {
    Channel.FAX: ("hylafax", "email-gateway", "outbox"),
    Channel.EMAIL: ("smtp", "outbox"),
    Channel.SMS: ("twilio", "outbox"),
}


@dataclass(frozen=True)
class Settings:
    timezone: ZoneInfo
    contacts_dir: Path
    templates_dir: Path
    ledger_url: str
    catch_up_minutes: int
    lease_seconds: float
    announce_days_before: float = DEFAULT_ANNOUNCE_DAYS


@dataclass(frozen=True)
class Sender:
    organisation: str
    service: str
    website: str


@dataclass(frozen=True)
class Helpdesk:
    name: str
    phone: str
    hours: str
    email: str | None = None  # where replies go: every e-mail's Reply-To

    @property
    def reply_to(self) -> str | None:
        """``Name <address>`` for a Reply-To header; None without ``email``."""
        if self.email is None:
            return None
        name, address = parseaddr(self.email)
        return formataddr((name or self.name, address))


@dataclass(frozen=True)
class AffectedService:
    name: str
    note: str


@dataclass(frozen=True)
class ChannelConfig:
    """``[channels.<channel>]``; each backend reads the keys it needs."""

    channel: Channel
    backend: str
    path: Path
    concurrency: int
    rate_per_second: float | None
    max_segments: int = 2
    from_address: str = ""
    host: str = "localhost"
    port: int | None = None
    security: str = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    timeout_seconds: float = 30.0
    base_url: str | None = None
    messaging_service_sid: str | None = None
    gateway_address: str | None = None
    ca_file: Path | None = None
    user: str = "dispatcher"
    max_dials: int = 3
    kill_after_minutes: int = 60
    poll_seconds: float = 10.0
    modem: str = "any"
    seconds_per_fax: float = 50.0  # one fax on one line, end to end: for capacity estimates


@dataclass(frozen=True)
class Publish:
    """``[publish]``: where the daemon keeps the page, calendar and feed, and their URL."""

    path: Path | None = None  # off unless set
    base_url: str | None = None  # where the files are served, e.g. https://example.jp/maintenance/
    refresh: timedelta = timedelta(hours=1)  # how often a calendar should look again


@dataclass(frozen=True)
class ConsoleSettings:
    """``[console]``: who may log in to the operator's console, and for how long."""

    users_file: Path  # one ``name:argon2id-hash`` a line, written by `dispatcher user add`
    secret_file: Path  # the key that signs session cookies, made on first use
    session_hours: float = 12.0
    login_attempts: int = 5  # wrong passwords per user and per address in 15 minutes


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    sender: Sender
    helpdesk: Helpdesk
    affected_services: tuple[AffectedService, ...]
    windows: tuple[Window, ...]
    channels: Mapping[Channel, ChannelConfig]
    retry: RetryPolicy
    receipts: Receipts
    http: Http
    publish: Publish = field(default_factory=Publish)
    console: ConsoleSettings | None = None  # None: read from a config built by hand
