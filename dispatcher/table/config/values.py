"""Value converters: each turns one TOML value into a typed one, or raises ValueError
saying what is wrong (the reader names where)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timezone, tzinfo
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from dispatcher.table.addresses import phone_number
from dispatcher.table.windows import Channel, Phase


def kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table", datetime: "a date-time", date: "a date",
             time: "a time"}
    return names.get(type(value), type(value).__name__)


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {kind(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def optional_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {kind(value)}")
    return value.strip()


_PRINTED_NUMBER = re.compile(r"\+?[0-9][0-9 ()-]*[0-9]")


def printed_number(value: Any) -> str:
    """A telephone number as a fax header prints it (``03-5555-0100``): ASCII digits, since
    HylaFAX images its tag line in a Latin font."""
    number = optional_text(value)
    if number and not _PRINTED_NUMBER.fullmatch(number):
        raise ValueError(f"{number!r} must be a telephone number such as \"03-5555-0100\" "
                         "(ASCII digits, -, spaces, parentheses, a leading +)")
    return number


def whole_number(minimum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {kind(value)}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, not {value}")
        return value
    return convert


def text_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be an array of strings, not {kind(value)}")
    items = tuple(v.strip() for v in value)
    duplicates = sorted({v for v in items if items.count(v) > 1})
    if duplicates:
        raise ValueError(f"lists {', '.join(duplicates)} more than once")
    return items


def email_addresses(value: Any) -> tuple[str, ...]:
    """Plain addresses such as ``desk@example.jp``, each checked."""
    addresses = []
    for item in text_list(value):
        try:
            addresses.append(validate_email(item, check_deliverability=False,
                                            allow_smtputf8=False).normalized)
        except EmailNotValidError as exc:
            raise ValueError(f"{item!r}: {exc}") from None
    return tuple(addresses)


def mobile_numbers(value: Any) -> tuple[str, ...]:
    """Mobile numbers for SMS, as E.164 (``090-1234-5678`` is read as a Japanese one)."""
    return tuple(phone_number(item, mobile=True) for item in text_list(value))


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
        raise ValueError(f"must be a number, not {kind(value)}")
    if value <= 0:
        raise ValueError(f"must be more than 0, not {value}")
    return float(value)


def percent(value: Any) -> float:
    """A share from 0 to 100 (``1``: one row in a hundred)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number from 0 to 100 (a percentage), not {kind(value)}")
    if not 0 <= value <= 100:
        raise ValueError(f"must be from 0 to 100 (a percentage), not {value}")
    return float(value)


def time_of_day(value: Any) -> time:
    """``"10:00"``: a local time of day (TOML's ``10:00:00`` too)."""
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if not isinstance(value, str):
        raise ValueError(f'must be a time of day such as "10:00", not {kind(value)}')
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f'{value!r} is not a time of day such as "10:00"') from None


def days_or_off(value: Any) -> float:
    """A number of days, or 0 for "off"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of days (0: none), not {kind(value)}")
    if value < 0:
        raise ValueError(f"must be 0 (none) or more, not {value}")
    return float(value)


def port_number(value: Any) -> int:
    port = whole_number(1)(value)
    if port > 65535:
        raise ValueError(f"must be a TCP port (1-65535), not {port}")
    return port


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {kind(value)}")
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
        raise ValueError(f"must be a date-time such as 2021-07-19T01:00:00, not {kind(value)}")
    return convert


def _localise(value: datetime, tz: tzinfo) -> datetime:
    """``value`` as an absolute moment: with the offset ``tz`` has then, fixed, so that
    adding a lead time or comparing moments is absolute arithmetic, not wall-clock. A time
    with no offset that ``tz`` skips or repeats (a DST change) is an error: give the offset."""
    if value.tzinfo is not None:
        return _fixed(value.astimezone(tz))
    aware = value.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise ValueError(f"{value.isoformat()} does not exist in {tz} (clocks skip it)")
    if aware.utcoffset() != aware.replace(fold=1).utcoffset():
        earlier, later = _fixed(aware), _fixed(aware.replace(fold=1))
        raise ValueError(f"{value.isoformat()} happens twice in {tz} (clocks go back): give "
                         f"the offset, {earlier.isoformat()} or {later.isoformat()}")
    return _fixed(aware)


def _fixed(aware: datetime) -> datetime:
    offset = aware.utcoffset()
    assert offset is not None
    return aware.replace(tzinfo=timezone(offset), fold=0)


def channel_names(value: Any) -> tuple[Channel, ...]:
    names = text_list(value)
    known = [c.value for c in Channel]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no channel named {', '.join(map(repr, unknown))} "
                         f"(channels are {', '.join(known)})")
    return tuple(Channel(n) for n in names)


def phase_names(value: Any) -> tuple[Phase, ...]:
    names = text_list(value)
    known = [p.value for p in Phase]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no phase named {', '.join(map(repr, unknown))} "
                         f"(phases are {', '.join(known)})")
    return tuple(Phase(n) for n in names)
