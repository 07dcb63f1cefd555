"""Reads typed values out of nested TOML tables, collecting every problem with the
file, line and key it concerns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dispatcher.errors import Problem
from dispatcher.table.config.values import kind
from dispatcher.table.tomlpos import LineIndex, TablePath

T = TypeVar("T")


class Reader:
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
            self.problem(table, key, f"must be a table ([{key}]), not {kind(value)}")
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

    def optional(self, data: Mapping[str, Any], table: TablePath, key: str,
                 convert: Callable[[Any], T]) -> T | None:
        """``convert(value)`` if the key is there, else None (not a problem)."""
        return self.value(data, table, key, convert) if key in data else None


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


def located(path: Path, table: TablePath, key: str | None = None) -> str:
    """Where ``key`` of ``table`` is in the TOML file at ``path``, as a problem names it
    (``config.toml:34: windows[3].start``); without the line if the file cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = ""
    return Reader(path, LineIndex(text)).where(table, key)
