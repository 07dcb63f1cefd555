"""``config.toml`` → frozen, typed objects, validated once.

Every problem is collected and reported together, each naming the file, the line where
it can be found and the key. Relative paths inside the file are relative to the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, tzinfo
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from dispatcher.errors import ConfigError, Problem, single
from dispatcher.retry import RetryPolicy
from dispatcher.tomlpos import LineIndex, TablePath
from dispatcher.windows import PLANNED, Channel, Notify, Slot, Window, reserve_name

DEFAULT_TIMEZONE = "Asia/Tokyo"
DEFAULT_LEDGER = "sqlite:///var/ledger.sqlite3"
DEFAULT_FROM = "dispatcher@localhost"
DEFAULT_LEASE_SECONDS = 120.0
HYLAFAX_PORT = 4559
BACKENDS: Mapping[Channel, tuple[str, ...]] = {
    Channel.FAX: ("hylafax", "email-gateway", "outbox"),
    Channel.EMAIL: ("smtp", "outbox"),
    Channel.SMS: ("twilio", "outbox"),
}
_NO_CHANNELS: tuple[Channel, ...] = ()
_NO_TAGS: tuple[str, ...] = ()
_WINDOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    timezone: ZoneInfo
    contacts_dir: Path
    templates_dir: Path
    ledger_url: str
    catch_up_minutes: int
    lease_seconds: float


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


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise single(ConfigError, str(path), "no such file") from None
    except IsADirectoryError:
        raise single(ConfigError, str(path), "is a folder, not a config file") from None
    except OSError as exc:
        raise single(ConfigError, str(path), f"cannot be read: {exc.strerror}") from None
    return parse_config(raw, path)


def parse_config(raw: bytes, path: Path) -> Config:
    """Validate the bytes of a config file that lives at ``path``."""
    text = _decode(raw, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, path) from None
    reader = _Reader(path, LineIndex(text))
    config = _build(reader, data)
    if reader.problems or config is None:
        raise ConfigError(reader.problems)
    return config


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise single(ConfigError, f"{path}:{line}", "not valid UTF-8 text") from None


def _syntax_error(exc: tomllib.TOMLDecodeError, path: Path) -> ConfigError:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        reason = message[: match.start()].strip()
        where = f"{path}:{match.group(1)}"
        return ConfigError([Problem(where, f"TOML syntax: {reason} (column {match.group(2)})")])
    return ConfigError([Problem(str(path), f"TOML syntax: {message}")])


class _Reader:
    """Reads typed values out of nested tables, collecting problems that name file, line, key."""

    def __init__(self, path: Path, lines: LineIndex) -> None:
        self.path = path
        self.lines = lines
        self.problems: list[Problem] = []

    def where(self, table: TablePath, key: str | None = None) -> str:
        line = self.lines.line_of(table, key)
        location = f"{self.path}:{line}" if line else str(self.path)
        dotted = _dotted(table, key)
        return f"{location}: {dotted}" if dotted else location

    def problem(self, table: TablePath, key: str | None, what: str) -> None:
        self.problems.append(Problem(self.where(table, key), what))

    def table(self, data: Mapping[str, Any], table: TablePath, key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(table, key, f"must be a table ([{key}]), not {_kind(value)}")
            return {}
        return value

    def tables(self, data: Mapping[str, Any], table: TablePath, key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(table, key, f"must be an array of tables ([[{key}]])")
            return []
        return value

    def unknown_keys(self, data: Mapping[str, Any], table: TablePath, known: set[str]) -> None:
        for key in data:
            if key not in known:
                allowed = ", ".join(sorted(known))
                self.problem(table, key, f"unknown key (allowed here: {allowed})")

    def value(
        self,
        data: Mapping[str, Any],
        table: TablePath,
        key: str,
        convert: Callable[[Any], T],
        default: T | None = None,
    ) -> T | None:
        """``convert(value)``; a ValueError from it becomes a problem. Missing → default."""
        if key not in data:
            if default is None:
                self.problem(table, key, "missing")
            return default
        try:
            return convert(data[key])
        except ValueError as exc:
            self.problem(table, key, str(exc))
            return None


def _dotted(table: TablePath, key: str | None) -> str:
    parts: list[str] = []
    for part in table:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part + 1}]"
        else:
            parts.append(part)
    if key is not None:
        parts.append(key)
    return ".".join(parts)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table", datetime: "a date-time", date: "a date",
             time: "a time"}
    return names.get(type(value), type(value).__name__)


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def optional_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_kind(value)}")
    return value.strip()


def whole_number(minimum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {_kind(value)}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, not {value}")
        return value
    return convert


def text_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be an array of strings, not {_kind(value)}")
    items = tuple(v.strip() for v in value)
    duplicates = sorted({v for v in items if items.count(v) > 1})
    if duplicates:
        raise ValueError(f"lists {', '.join(duplicates)} more than once")
    return items


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return str(value)
    return convert


def mailbox(value: Any) -> str:
    """An e-mail sender such as ``J-Mups センター <maintenance@example.jp>``."""
    raw = text(value)
    _, address = parseaddr(raw)
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{raw!r} is not a mailbox like 'Name <user@example.jp>': {exc}"
                         ) from None
    return raw


def positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {_kind(value)}")
    if value <= 0:
        raise ValueError(f"must be more than 0, not {value}")
    return float(value)


def port_number(value: Any) -> int:
    port = whole_number(1)(value)
    if port > 65535:
        raise ValueError(f"must be a TCP port (1-65535), not {port}")
    return port


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_kind(value)}")
    return value


def env_name(value: Any) -> str:
    name = text(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not an environment variable name")
    return name


def http_url(value: Any) -> str:
    url = text(value)
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url.rstrip("/")


def gateway_address(value: Any) -> str:
    address = text(value)
    if "{number}" not in address and "{national}" not in address:
        raise ValueError(f"{address!r} must contain {{number}} or {{national}}, "
                         "e.g. \"{number}@fax.example.jp\"")
    try:
        address.format(number="81312345678", national="0312345678")
    except KeyError as exc:
        raise ValueError(f"{address!r} has an unknown field {{{exc.args[0]}}}; "
                         "it may use {number} and {national}") from exc
    except (IndexError, ValueError) as exc:
        raise ValueError(f"{address!r}: {exc}") from exc
    return address


def sms_sender(value: Any) -> str:
    """The number SMS are sent from, in E.164 (``+81…``)."""
    sender = text(value)
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", sender):
        raise ValueError(f"{sender!r} must be a number in E.164 form, e.g. \"+815012345678\"")
    return sender


def zone(value: Any) -> ZoneInfo:
    name = text(value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. 'Asia/Tokyo')") from None


def moment(tz: tzinfo) -> Callable[[Any], datetime]:
    def convert(value: Any) -> datetime:
        if isinstance(value, datetime):
            return _localise(value, tz)
        if isinstance(value, date):
            raise ValueError(f"needs a time of day too, e.g. {value.isoformat()}T01:00:00")
        if isinstance(value, str):
            raise ValueError(f"must be a TOML date-time without quotes, not the string {value!r}")
        raise ValueError(f"must be a date-time such as 2021-07-19T01:00:00, not {_kind(value)}")
    return convert


def _localise(value: datetime, tz: tzinfo) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(tz)
    aware = value.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise ValueError(f"{value.isoformat()} does not exist in {tz} (clocks skip it)")
    return aware


def channel_names(value: Any) -> tuple[Channel, ...]:
    names = text_list(value)
    known = [c.value for c in Channel]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no channel named {', '.join(map(repr, unknown))} "
                         f"(channels are {', '.join(known)})")
    return tuple(Channel(n) for n in names)


_TOP_KEYS = {"dispatcher", "sender", "helpdesk", "affected_services", "windows", "channels",
             "retry"}
_SETTINGS_KEYS = {"timezone", "contacts", "templates", "ledger", "catch_up_minutes",
                  "lease_seconds"}
_WINDOW_KEYS = {"number", "id", "title", "start", "end", "impact", "impact_detail", "notify",
                "channels", "audience", "reserve"}
_COMMON_CHANNEL_KEYS = {"backend", "path", "concurrency", "rate_per_second"}
_CHANNEL_KEYS: Mapping[Channel, set[str]] = {
    Channel.FAX: _COMMON_CHANNEL_KEYS | {"gateway_address", "host", "port", "user",
                                         "password_env", "max_dials", "kill_after_minutes",
                                         "poll_seconds", "modem"},
    Channel.EMAIL: _COMMON_CHANNEL_KEYS | {"host", "port", "security", "username_env",
                                           "password_env", "from", "timeout_seconds",
                                           "ca_file"},
    Channel.SMS: _COMMON_CHANNEL_KEYS | {"from", "messaging_service_sid", "base_url",
                                         "max_segments", "timeout_seconds"},
}
_DEFAULT_CONCURRENCY = {Channel.FAX: 4, Channel.EMAIL: 8, Channel.SMS: 4}
_SECURITY_PORTS = {"none": 25, "starttls": 587, "tls": 465}
_RETRY_KEYS = {"initial_delay_seconds", "max_delay_seconds", "max_attempts", "retry_uncertain"}


def _build(r: _Reader, data: dict[str, Any]) -> Config | None:
    r.unknown_keys(data, (), _TOP_KEYS)
    settings = _settings(r, r.table(data, (), "dispatcher"))
    sender = _sender(r, r.table(data, (), "sender"))
    helpdesk = _helpdesk(r, r.table(data, (), "helpdesk"))
    affected = _affected(r, r.tables(data, (), "affected_services"))
    windows = _windows(r, r.tables(data, (), "windows"), settings.timezone)
    channels = _channels(r, r.table(data, (), "channels"))
    retry = _retry(r, r.table(data, (), "retry"))
    if r.problems or sender is None or helpdesk is None:
        return None
    return Config(r.path, settings, sender, helpdesk, affected, windows, channels, retry)


def _settings(r: _Reader, data: dict[str, Any]) -> Settings:
    t: TablePath = ("dispatcher",)
    r.unknown_keys(data, t, _SETTINGS_KEYS)
    base = r.path.parent
    tz = r.value(data, t, "timezone", zone, ZoneInfo(DEFAULT_TIMEZONE))
    contacts = r.value(data, t, "contacts", text, "contacts")
    templates = r.value(data, t, "templates", text, "templates")
    ledger = r.value(data, t, "ledger", text, DEFAULT_LEDGER)
    catch_up = r.value(data, t, "catch_up_minutes", whole_number(0), 30)
    lease = r.value(data, t, "lease_seconds", positive_number, DEFAULT_LEASE_SECONDS)
    return Settings(
        timezone=tz or ZoneInfo(DEFAULT_TIMEZONE),
        contacts_dir=base / (contacts or "contacts"),
        templates_dir=base / (templates or "templates"),
        ledger_url=ledger or DEFAULT_LEDGER,
        catch_up_minutes=30 if catch_up is None else catch_up,
        lease_seconds=lease or DEFAULT_LEASE_SECONDS,
    )


def _sender(r: _Reader, data: dict[str, Any]) -> Sender | None:
    t: TablePath = ("sender",)
    if not data:
        r.problem((), "sender", "missing table [sender] (organisation, service, website)")
        return None
    r.unknown_keys(data, t, {"organisation", "service", "website"})
    organisation = r.value(data, t, "organisation", text)
    service = r.value(data, t, "service", text)
    website = r.value(data, t, "website", optional_text, "")
    if organisation is None or service is None:
        return None
    return Sender(organisation, service, website or "")


def _helpdesk(r: _Reader, data: dict[str, Any]) -> Helpdesk | None:
    t: TablePath = ("helpdesk",)
    if not data:
        r.problem((), "helpdesk", "missing table [helpdesk] (name, phone, hours)")
        return None
    r.unknown_keys(data, t, {"name", "phone", "hours"})
    name = r.value(data, t, "name", text)
    phone = r.value(data, t, "phone", text)
    hours = r.value(data, t, "hours", text)
    if name is None or phone is None or hours is None:
        return None
    return Helpdesk(name, phone, hours)


def _affected(r: _Reader, items: list[dict[str, Any]]) -> tuple[AffectedService, ...]:
    services = []
    for index, data in enumerate(items):
        t: TablePath = ("affected_services", index)
        r.unknown_keys(data, t, {"name", "note"})
        name = r.value(data, t, "name", text)
        note = r.value(data, t, "note", optional_text, "")
        if name is not None:
            services.append(AffectedService(name, note or ""))
    return tuple(services)


def _windows(r: _Reader, items: list[dict[str, Any]], tz: tzinfo) -> tuple[Window, ...]:
    if not items:
        r.problem((), "windows", "the table has no windows: add at least one [[windows]]")
        return ()
    indexed = [(i, w) for i, data in enumerate(items) if (w := _window(r, data, i, tz))]
    for attribute in ("number", "id"):
        _report_duplicates(r, indexed, attribute)
    return tuple(w for _, w in indexed)


def _window(r: _Reader, data: dict[str, Any], index: int, tz: tzinfo) -> Window | None:
    t: TablePath = ("windows", index)
    r.unknown_keys(data, t, _WINDOW_KEYS)
    before = len(r.problems)
    number = r.value(data, t, "number", whole_number(1))
    window_id = r.value(data, t, "id", _window_id)
    title = r.value(data, t, "title", text)
    impact = r.value(data, t, "impact", text)
    detail = r.value(data, t, "impact_detail", optional_text, "")
    notify = r.value(data, t, "notify", one_of(tuple(n.value for n in Notify)))
    channels = r.value(data, t, "channels", channel_names, _NO_CHANNELS)
    audience = r.value(data, t, "audience", text_list, _NO_TAGS)
    planned = _slot(r, data, t, PLANNED, tz)
    reserves = [_slot(r, d, (*t, "reserve", i), reserve_name(i + 1), tz)
                for i, d in enumerate(r.tables(data, t, "reserve"))]
    if notify == Notify.BROADCAST and channels == ():
        r.problem(t, "channels", 'a broadcast window needs at least one channel, '
                                  'e.g. channels = ["fax", "email", "sms"]')
    if planned is not None:
        _check_reserves(r, t, planned, reserves)
    if len(r.problems) > before or planned is None or None in reserves:
        return None
    # Every value below is set: a missing or bad one would have added a problem.
    assert number and window_id and title and impact and notify
    return Window(number, window_id, title, impact, detail or "", Notify(notify),
                  channels or (), audience or (),
                  (planned, *[s for s in reserves if s is not None]))


def _window_id(value: Any) -> str:
    window_id = text(value)
    if not _WINDOW_ID.match(window_id):
        raise ValueError(f"{window_id!r} may hold only letters, digits, '.', '_' and '-'")
    if window_id.isdigit():
        raise ValueError(f"{window_id!r} must not be all digits (it would read as a number)")
    return window_id


def _slot(r: _Reader, data: dict[str, Any], t: TablePath, name: str, tz: tzinfo) -> Slot | None:
    if t[-2:-1] == ("reserve",):
        r.unknown_keys(data, t, {"start", "end"})
    start = r.value(data, t, "start", moment(tz))
    end = r.value(data, t, "end", moment(tz))
    if start is None or end is None:
        return None
    if end <= start:
        r.problem(t, "end", f"must be after start ({end:%Y-%m-%d %H:%M} is not after "
                            f"{start:%Y-%m-%d %H:%M})")
        return None
    return Slot(name, start, end)


def _check_reserves(
    r: _Reader, t: TablePath, planned: Slot, reserves: list[Slot | None]
) -> None:
    previous = planned
    for index, slot in enumerate(reserves):
        if slot is None:
            continue
        where: TablePath = (*t, "reserve", index)
        if slot.overlaps(planned):
            r.problem(where, "start", f"{slot.name} overlaps the planned slot "
                                      f"({planned.start:%Y-%m-%d %H:%M}–{planned.end:%H:%M})")
        elif slot.start < previous.end:
            r.problem(where, "start", f"{slot.name} must start after {previous.name} ends "
                                      f"({previous.end:%Y-%m-%d %H:%M}): postponing moves forward")
        previous = slot


def _report_duplicates(
    r: _Reader, indexed: list[tuple[int, Window]], attribute: str
) -> None:
    seen: dict[object, int] = {}
    for index, window in indexed:
        value = getattr(window, attribute)
        if value in seen:
            r.problem(("windows", index), attribute,
                      f"{value!r} is already used by windows[{seen[value] + 1}]")
        else:
            seen[value] = index


def _channels(r: _Reader, data: dict[str, Any]) -> dict[Channel, ChannelConfig]:
    configs = {}
    for name in data:
        if name not in [c.value for c in Channel]:
            r.problem(("channels", name), None, f"no channel named {name!r} "
                                           f"(channels are {', '.join(c.value for c in Channel)})")
    for channel in Channel:
        configs[channel] = _channel(r, channel, r.table(data, ("channels",), channel.value))
    return configs


def _channel(r: _Reader, channel: Channel, data: dict[str, Any]) -> ChannelConfig:
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
    )
    from_address = _from_address(r, t, channel, backend, data)
    _require_backend_keys(r, t, base, from_address, data)
    return replace(base, from_address=from_address)


def _optional_path(r: _Reader, data: dict[str, Any], t: TablePath, key: str) -> Path | None:
    value = r.value(data, t, key, text, "")
    if not value:
        return None
    path = r.path.parent / value
    if not path.is_file():
        r.problem(t, key, f"{path}: no such file")
    return path


def _from_address(r: _Reader, t: TablePath, channel: Channel, backend: str,
                  data: dict[str, Any]) -> str:
    if channel is Channel.EMAIL:
        return r.value(data, t, "from", mailbox, DEFAULT_FROM) or DEFAULT_FROM
    if channel is Channel.SMS:
        return r.value(data, t, "from", sms_sender, "") or ""
    return ""


def _require_backend_keys(r: _Reader, t: TablePath, config: ChannelConfig,
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


def _retry(r: _Reader, data: dict[str, Any]) -> RetryPolicy:
    t: TablePath = ("retry",)
    r.unknown_keys(data, t, _RETRY_KEYS)
    default = RetryPolicy()
    initial = r.value(data, t, "initial_delay_seconds", positive_number,
                      default.initial_delay_seconds)
    ceiling = r.value(data, t, "max_delay_seconds", positive_number, default.max_delay_seconds)
    attempts = r.value(data, t, "max_attempts", whole_number(1), default.max_attempts)
    uncertain = r.value(data, t, "retry_uncertain", boolean, default.retry_uncertain)
    policy = RetryPolicy(initial or default.initial_delay_seconds,
                         ceiling or default.max_delay_seconds,
                         attempts or default.max_attempts,
                         bool(uncertain))
    if policy.max_delay_seconds < policy.initial_delay_seconds:
        r.problem(t, "max_delay_seconds", "must not be less than initial_delay_seconds")
    return policy
