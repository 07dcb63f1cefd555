"""Line numbers for TOML tables and keys, so that messages can say ``config.toml:34``.

``tomllib`` gives values without positions; this scans the text for table headers and
``key =`` lines. It covers the plain layout a hand-written config uses; for anything it
cannot place (inline tables, dotted keys) it answers None and the message has no line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- \"']+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = r"^\s*[\"']?{key}[\"']?\s*="

TablePath = tuple[str | int, ...]


@dataclass(frozen=True)
class _Header:
    line: int
    name: str
    is_array: bool


class LineIndex:
    """Where each table and key of one TOML text starts (1-based line numbers)."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._headers = [
            _Header(number, _normalise(match.group(2)), match.group(1) == "[[")
            for number, line in enumerate(self._lines, start=1)
            if (match := _HEADER.match(line))
        ]

    def line_of(self, path: TablePath, key: str | None = None) -> int | None:
        """The line of ``key`` inside the table at ``path``, else the table's header line."""
        span = self._span(path)
        if span is None:
            return None
        first, last = span
        if key is not None:
            pattern = re.compile(_KEY.format(key=re.escape(key)))
            for number in range(first + (1 if path else 0), last + 1):
                if pattern.match(self._lines[number - 1]):
                    return number
        return first if path else None

    def _span(self, path: TablePath) -> tuple[int, int] | None:
        """First and last line of the table's own keys (up to the next header)."""
        start = 1 if not path else self._header_line(path)
        if start is None:
            return None
        following = [h.line for h in self._headers if h.line > start]
        end = following[0] - 1 if following else len(self._lines)
        if not path and self._headers:
            end = self._headers[0].line - 1
        return start, end

    def _header_line(self, path: TablePath) -> int | None:
        lower, upper = 0, len(self._lines) + 1
        names: list[str] = []
        line: int | None = None
        for part in path:
            if isinstance(part, int):
                candidates = [
                    h for h in self._headers
                    if h.is_array and h.name == ".".join(names) and lower <= h.line < upper
                ]
                if part >= len(candidates):
                    return None
                line = candidates[part].line
                lower = line
                upper = candidates[part + 1].line if part + 1 < len(candidates) else upper
            else:
                names.append(part)
                match = [
                    h for h in self._headers
                    if not h.is_array and h.name == ".".join(names) and lower <= h.line < upper
                ]
                if match:
                    line = match[0].line
        return line


def _normalise(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))
