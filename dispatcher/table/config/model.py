"""What `config.toml` declares, as frozen, typed objects, and its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from dispatcher.table.contacts import DEFAULT_INVALID_ROWS_PERCENT
from dispatcher.table.receipt_settings import Http, Receipts
from dispatcher.table.retry import RetryPolicy
from dispatcher.table.windows import AffectedService, Channel, Phase, Step, Window

DEFAULT_TIMEZONE = "Asia/Tokyo"


DEFAULT_LEDGER = "sqlite:///var/ledger.sqlite3"


DEFAULT_FROM = "dispatcher@localhost"


DEFAULT_LEASE_SECONDS = 120.0


DEFAULT_ANNOUNCE_DAYS = 0.0  # the advance notice goes only when a table asks for it
DEFAULT_ANNOUNCE_AT = time(10, 0)  # business hours, never at night
DEFAULT_OVERRUN_MINUTES = 10


HYLAFAX_PORT = 4559


SECONDS_PER_MESSAGE: Mapping[Channel, float] = {Channel.FAX: 50.0, Channel.EMAIL: 0.1,
                                                Channel.SMS: 0.25, Channel.VOICE: 1.0}


BACKENDS: Mapping[Channel, tuple[str, ...]] = {
    Channel.FAX: ("hylafax", "email-gateway", "outbox"),
    Channel.EMAIL: ("smtp", "outbox"),
    Channel.SMS: ("twilio", "outbox"),
    Channel.VOICE: ("twilio", "outbox"),
}

# Twilio's Japanese text-to-speech voices ([channels.voice] voice)
JAPANESE_VOICES = ("Polly.Mizuki", "Polly.Takumi", "Polly.Kazuha-Neural", "Polly.Tomoko-Neural",
                   "Polly.Takumi-Neural")


@dataclass(frozen=True)
class Settings:
    timezone: ZoneInfo
    contacts_dir: Path
    templates_dir: Path
    ledger_url: str
    catch_up_minutes: int
    lease_seconds: float
    announce_days_before: float = DEFAULT_ANNOUNCE_DAYS
    announce_at: time = DEFAULT_ANNOUNCE_AT  # the local time of day it goes
    # with end_notice = "confirmed": how long after the end in force, without `done`,
    # the overrun notice goes out
    overrun_after_minutes: int = DEFAULT_OVERRUN_MINUTES
    # a contacts file with more bad rows than this share of its rows is refused whole
    invalid_rows_percent: float = DEFAULT_INVALID_ROWS_PERCENT


@dataclass(frozen=True)
class Sender:
    organisation: str
    service: str
    website: str
    fax: str = ""  # the number the fax pages are sent from, printed on their header line
    centre: str = ""  # what the maintenance is of, as the notices name it: "J-Mups センター"


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
class OutboxSettings:
    """``backend = "outbox"``: every message written as a file under the channel's path."""

    name: ClassVar[str] = "outbox"


@dataclass(frozen=True)
class SmtpSettings:
    """``backend = "smtp"``: the e-mail server and the login it takes."""

    name: ClassVar[str] = "smtp"
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # none, starttls or tls
    username_env: str | None = None
    password_env: str | None = None
    timeout_seconds: float = 30.0
    ca_file: Path | None = None


@dataclass(frozen=True)
class TwilioSettings:
    """``backend = "twilio"``: SMS through Twilio, from a number or a messaging service;
    calls ([channels.voice]) from a number."""

    name: ClassVar[str] = "twilio"
    from_number: str | None = None  # ``from``: an E.164 number such as +815012345678
    messaging_service_sid: str | None = None
    base_url: str | None = None  # another API root (a local server speaking Twilio's API)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class HylafaxSettings:
    """``backend = "hylafax"``: the HylaFAX server, and how it dials."""

    name: ClassVar[str] = "hylafax"
    host: str = "localhost"
    port: int = HYLAFAX_PORT
    user: str = "dispatcher"
    password_env: str | None = None
    max_dials: int = 3
    kill_after_minutes: int = 60
    poll_seconds: float = 10.0  # how often the server is asked about submitted jobs
    modem: str = "any"


@dataclass(frozen=True)
class GatewaySettings:
    """``backend = "email-gateway"``: each fax an e-mail to the gateway's address for the
    number, sent through the e-mail channel's transport."""

    name: ClassVar[str] = "email-gateway"
    gateway_address: str = "{number}@fax.example.jp"


BackendSettings = (OutboxSettings | SmtpSettings | TwilioSettings | HylafaxSettings
                   | GatewaySettings)


@dataclass(frozen=True)
class ChannelConfig:
    """``[channels.<channel>]``: the keys every channel has, and its backend's own."""

    channel: Channel
    backend: BackendSettings
    path: Path
    concurrency: int
    rate_per_second: float | None
    # one message on one connection, end to end, for capacity estimates and the fax pace:
    # a fax on a line ([channels.fax] seconds_per_fax); where no rate says otherwise, an
    # e-mail to an SMTP relay on the LAN, an SMS to Twilio's API (on the safe side)
    seconds_per_message: float


@dataclass(frozen=True)
class Messages:
    """What the messages are, whatever backend carries them: the mailbox every e-mail
    (and e-mail to a fax gateway) comes from (``[channels.email] from``), the most
    segments an SMS may take (``[channels.sms] max_segments``), and the voice a call
    speaks in (``[channels.voice] voice``)."""

    mail_from: str = DEFAULT_FROM
    sms_max_segments: int = 2
    voice: str = JAPANESE_VOICES[0]


@dataclass(frozen=True)
class Publish:
    """``[publish]``: where the daemon keeps the page, calendar and feed, and their URL."""

    path: Path | None = None  # off unless set
    base_url: str | None = None  # where the files are served, e.g. https://example.jp/maintenance/
    refresh: timedelta = timedelta(hours=1)  # how often a calendar should look again


@dataclass(frozen=True)
class Alerts:
    """``[alerts]``: the operators told when a work overruns its confirmed end, through the
    e-mail and SMS channels' backends. Off while both are empty."""

    email: tuple[str, ...] = ()
    sms: tuple[str, ...] = ()

    def addresses(self) -> list[tuple[Channel, str]]:
        return [(Channel.EMAIL, a) for a in self.email] + [(Channel.SMS, n) for n in self.sms]


@dataclass(frozen=True)
class ConfirmSettings:
    """``[confirm]``: the phases whose notices ask each contact to confirm they read it,
    through a personal link (``{[http] public_url}/c/{code}``), or by pressing 1 on a call;
    a window's own ``confirm`` takes the place of ``phases``. The ``steps`` (``steps``,
    then the call-out ``callout_after`` on voice), by the time after a notice's sending
    began, send it again to those who have not confirmed."""

    phases: tuple[Phase, ...] = ()
    steps: tuple[Step, ...] = ()


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
    messages: Messages
    retry: RetryPolicy
    receipts: Receipts
    http: Http
    publish: Publish = field(default_factory=Publish)
    console: ConsoleSettings | None = None  # None: read from a config built by hand
    alerts: Alerts = field(default_factory=Alerts)
    confirm: ConfirmSettings = field(default_factory=ConfirmSettings)

    def services_of(self, window: Window) -> tuple[AffectedService, ...]:
        """The services ``window``'s work stops: its own list, else the table's."""
        return window.services if window.services is not None else self.affected_services
