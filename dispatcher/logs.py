"""Log lines for operators (``key=value``) or machines (``--log-format json``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any

_FIELDS = "fields"
_zone: list[tzinfo | None] = [None]  # the configured zone, once the table is read


def use_zone(zone: tzinfo | None) -> None:
    """Write every time in the log (the line's own, and each field's) with ``zone``'s
    offset: the configured zone, as the notices and the console show them (None: each
    field as it is, the line's own in the machine's zone, or UTC in JSON)."""
    _zone[0] = zone


def _now_of(record: logging.LogRecord, unset: tzinfo | None) -> datetime:
    """The line's time, in the configured zone (before the table is read: ``unset``'s,
    None for the machine's)."""
    return datetime.fromtimestamp(record.created, UTC).astimezone(_zone[0] or unset)


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """One log line: a fixed message and its fields."""
    logger.log(level, message, extra={_FIELDS: fields})


def failure(logger: logging.Logger, message: str, exc: BaseException, **fields: Any) -> None:
    """An error line with its fields, followed by the exception's traceback."""
    logger.error(message, extra={_FIELDS: fields}, exc_info=exc)


class Failures:
    """Something that keeps failing, logged as an operator wants it at 2 a.m.: its first
    failure (and each new kind of failure) once with the traceback, then only a count at 2,
    4, 8… failures in a row, and one line when it works again."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self.count = 0
        self._last: str | None = None

    def failed(self, exc: BaseException, **fields: Any) -> int:
        """Log ``exc`` as the next failure in a row; returns how many in a row."""
        self.count += 1
        error = f"{type(exc).__name__}: {exc}"
        if error != self._last:
            self._last = error
            failure(self._logger, f"{self._what} failed", exc, error=error,
                    failures=self.count, **fields)
        elif self.count & (self.count - 1) == 0:
            event(self._logger, logging.ERROR, f"{self._what} still failing", error=error,
                  failures=self.count, **fields)
        return self.count

    def recovered(self, **fields: Any) -> None:
        """It worked: say so if it had been failing, and start counting afresh."""
        if self.count:
            event(self._logger, logging.INFO, f"{self._what} works again",
                  after_failures=self.count, **fields)
        self.count = 0
        self._last = None


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        pairs = " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        moment = _now_of(record, None).isoformat(timespec="seconds")
        line = f"{moment} {record.levelname:<7} {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        return f"{line}\n{self.formatException(record.exc_info)}" if record.exc_info else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        data = {"time": _now_of(record, UTC).isoformat(),
                "level": record.levelname.lower(), "event": record.getMessage(),
                **{key: _plain(value) for key, value in fields.items()}}
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure(log_format: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "weasyprint", "weasyprint.progress", "fontTools", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        zone = _zone[0]
        return (value.astimezone(zone) if zone and value.tzinfo else value).isoformat()
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def _text(value: Any) -> str:
    text = json.dumps(_plain(value), ensure_ascii=False)
    return text[1:-1] if isinstance(value, str) and " " not in value else text
