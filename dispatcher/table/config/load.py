"""Reading `config.toml`: bytes → TOML → the sections, every problem collected."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from dispatcher.errors import ConfigError, Problem, single
from dispatcher.table.config.channels import read_channels
from dispatcher.table.config.model import Config
from dispatcher.table.config.reader import Reader, located
from dispatcher.table.config.receipt_sections import read_http, read_receipts
from dispatcher.table.config.sections import (
    read_affected,
    read_alerts,
    read_confirm,
    read_console,
    read_helpdesk,
    read_publish,
    read_retry,
    read_sender,
    read_settings,
)
from dispatcher.table.config.window_rows import WindowDefaults, read_reminders, read_windows
from dispatcher.table.tomlpos import LineIndex, TablePath
from dispatcher.table.windows import PLANNED, Channel, Window


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


def window_where(config: Config, window: Window, slot: str, key: str) -> str:
    """Where ``key`` of ``window`` (of its reserve slot ``slot``) is in the table, as a
    problem names it: ``config.toml:34: windows[3].start``."""
    table: TablePath = ("windows", config.windows.index(window))
    if slot != PLANNED:
        table = (*table, "reserve", [s.name for s in window.reserves].index(slot))
    return located(config.path, table, key)


def parse_config(raw: bytes, path: Path) -> Config:
    """Validate the bytes of a config file that lives at ``path``."""
    text = _decode(raw, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, path) from None
    reader = Reader(path, LineIndex(text))
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


_TOP_KEYS = {"dispatcher", "sender", "helpdesk", "affected_services", "windows", "channels",
             "retry", "receipts", "http", "publish", "reminders", "console", "alerts",
             "confirm"}


def _build(r: Reader, data: dict[str, Any]) -> Config | None:
    r.unknown_keys(data, (), _TOP_KEYS)
    settings = read_settings(r, r.table(data, (), "dispatcher"))
    sender = read_sender(r, r.table(data, (), "sender"))
    helpdesk = read_helpdesk(r, r.table(data, (), "helpdesk"))
    affected = read_affected(r, r.tables(data, (), "affected_services"))
    reminders = read_reminders(r, r.table(data, (), "reminders"))
    confirm = read_confirm(r, r.table(data, (), "confirm"))
    windows = read_windows(r, r.tables(data, (), "windows"), settings.timezone,
                           WindowDefaults(settings.announce_days_before,
                                          settings.announce_at.replace(
                                              tzinfo=settings.timezone),
                                          reminders, confirm.phases,
                                          confirm.steps, affected))
    channels, messages = read_channels(r, r.table(data, (), "channels"))
    retry = read_retry(r, r.table(data, (), "retry"))
    receipts = read_receipts(r, r.table(data, (), "receipts"))
    http = read_http(r, r.table(data, (), "http"))
    publish = read_publish(r, r.table(data, (), "publish"))
    console = read_console(r, r.table(data, (), "console"))
    alerts = read_alerts(r, r.table(data, (), "alerts"))
    if any(w.confirm for w in windows) and not http.enabled:
        r.problem(("confirm",), "phases", "a notice that asks to confirm carries a link to "
                  "the daemon's HTTP server: set [http] listen (and public_url, how the "
                  "contacts reach it)")
    if confirm.steps and not any(w.confirm for w in windows):
        only_a_call = [s.channel for s in confirm.steps] == [Channel.VOICE]
        r.problem(("confirm",), "callout_after" if only_a_call else "steps",
                  "escalates the notices that ask to confirm, and none does: set [confirm] "
                  "phases (or a window's confirm)")
    if r.problems or sender is None or helpdesk is None:
        return None
    return Config(r.path, settings, sender, helpdesk, affected, windows, channels, messages,
                  retry, receipts, http, publish, console, alerts, confirm)
