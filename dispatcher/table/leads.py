"""Lead times: how long before the work a reminder goes out. Written ``"72h"``, ``"30m"``,
``"2d"`` or ``"90s"`` in the config and on the command line; pure functions."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_LEAD = re.compile(r"^\s*(\d+)\s*([dhms])\s*$")


def parse_lead(value: str) -> timedelta:
    """``"72h"`` → 72 hours; ValueError naming the accepted forms."""
    match = _LEAD.match(value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a lead time: a positive whole number and a unit, "
                         'd, h, m or s, e.g. "72h", "30m"')
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def lead_text(lead: timedelta) -> str:
    """The lead as written in a notice key and on the command line: the largest whole unit
    (``"72h"`` stays ``"72h"``, 90 minutes is ``"90m"``)."""
    seconds = int(lead.total_seconds())
    for unit in "hms":
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def jp_lead(lead: timedelta) -> str:
    """How a notice says it: ``3日``, ``24時間``, ``1時間30分``, ``30分``, ``10秒``."""
    seconds = int(lead.total_seconds())
    if seconds >= 2 * 86_400 and seconds % 86_400 == 0:
        return f"{seconds // 86_400}日"
    hours, rest = divmod(seconds, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}時間" if hours else "", f"{minutes}分" if minutes else "",
             f"{secs}秒" if secs else ""]
    return "".join(parts) or "0秒"
