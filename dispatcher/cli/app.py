"""What the commands share: the Typer app, the consoles, the common options and small
helpers (the clock, the ledger, times and JSON as printed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvloop
from rich.console import Console

from dispatcher.cli import report
from dispatcher.errors import ArgumentError, Interrupted, single
from dispatcher.ledger import Ledger, engine_url, may_exist
from dispatcher.table import (
    Channel,
    Config,
    Notice,
    Phase,
    parse_lead,
)

app = typer.Typer(
    help="Sends maintenance-window notices by fax, e-mail and SMS, exactly once.",
    no_args_is_help=True,
    rich_markup_mode=None,  # '[http] listen' in a help text is words, not markup
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="The window table; paths inside it are relative to it."),
]
DEFAULT_CONFIG = Path("config.toml")
WindowArgument = Annotated[str, typer.Argument(help="The window's number or id.")]
PhaseArgument = Annotated[Phase, typer.Argument(help="Which notice.")]
ChannelsOption = Annotated[
    list[Channel] | None, typer.Option(help="Only this channel (repeatable).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LeadOption = Annotated[str | None, typer.Option(
    "--lead", help="Which reminder: its lead time before the start, e.g. 1h, 24h, 3d.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``main`` on uvloop's event loop: the asyncio API on libuv, about a fifth faster
    over a broadcast's many small SMTP round trips (bench/send.py)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            return runner.run(main)
        except KeyboardInterrupt:  # the main task was cancelled: the sending stopped
            raise Interrupted() from None


def clock() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def opened_ledger(cfg: Config, create: bool = True) -> AsyncIterator[Ledger]:
    """The table's ledger; not ``create``: a SQLite ledger not made yet is not made (an
    empty one in memory stands for it: a dry run writes nothing)."""
    url = engine_url(cfg.settings.ledger_url, cfg.path.parent)
    if not create and not may_exist(url):
        url = url.set(database=":memory:")
    ledger = await Ledger.open(url)
    try:
        yield ledger
    finally:
        await ledger.close()


async def read_ledger(cfg: Config, read: Callable[[Ledger], Awaitable[T]], empty: T) -> T:
    """What ``read`` finds in the ledger; ``empty`` where there is no ledger yet (a SQLite
    file is not made just to be read)."""
    if not may_exist(engine_url(cfg.settings.ledger_url, cfg.path.parent)):
        return empty
    async with opened_ledger(cfg) as ledger:
        return await read(ledger)


def slot_text(notice: Notice) -> str:
    return report.slot_range(notice.slot, notice.slot.start.tzinfo or UTC)


def lead_of(value: str | None) -> timedelta | None:
    """``--lead 1h`` as a time; ArgumentError naming the option."""
    if value is None:
        return None
    try:
        return parse_lead(value)
    except ValueError as exc:
        raise single(ArgumentError, "--lead", str(exc)) from None


def parse_now(value: str | None, tz: tzinfo) -> datetime:
    return clock().astimezone(tz) if value is None else parse_moment(value, tz, "--now")


def parse_moment(value: str, tz: tzinfo, option: str) -> datetime:
    """An ISO-8601 date-time given as ``option``; without an offset, in ``tz``."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise single(ArgumentError, option,
                     f"{value!r} is not an ISO-8601 date-time, e.g. 2021-07-19T00:30:00+09:00"
                     ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_later_moment(value: str, after: datetime, tz: tzinfo, option: str) -> datetime:
    """``value`` as an operator types it at night: a time of day (``01:00``) is the next
    such moment after ``after`` in ``tz`` (``--until 01:00`` at AM0:30 is tonight's
    AM1:00, and after AM1:00 tomorrow's); anything else, an ISO-8601 date-time."""
    clock_time = _CLOCK_TIME.match(value.strip())
    if clock_time is None:
        return parse_moment(value, tz, option)
    local = after.astimezone(tz)
    moment = datetime.combine(local.date(), time(int(clock_time[1]), int(clock_time[2])),
                              tzinfo=tz)
    return moment if moment > local else datetime.combine(
        local.date() + timedelta(days=1), moment.timetz())


def print_json(data: object, zone: tzinfo | None = None) -> None:
    """``data`` as JSON on stdout; its moments (datetimes) with ``zone``'s offset, the
    configured zone's (the ledger keeps UTC)."""
    def moment(value: object) -> str:
        if isinstance(value, datetime):
            return (value.astimezone(zone) if zone is not None else value).isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON")
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=moment) + "\n")
