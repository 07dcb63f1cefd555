"""Times written the way the seed notice writes them: ``2021年5月30日(日) PM10:30～翌AM3:00``.

Pure functions; the caller converts to the display time zone first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

WEEKDAYS = "月火水木金土日"
RANGE_SEPARATOR = "～"


def jp_date(moment: datetime) -> str:
    """``2021年7月19日(月)``."""
    return f"{moment.year}年{moment.month}月{moment.day}日({WEEKDAYS[moment.weekday()]})"


def jp_month_day(moment: datetime) -> str:
    """``7/19(月)``: the short date an SMS uses."""
    return f"{moment.month}/{moment.day}({WEEKDAYS[moment.weekday()]})"


def jp_clock(moment: datetime) -> str:
    """``AM1:00`` / ``PM10:30``; midnight is ``AM0:00`` and noon ``PM0:00`` as in Japanese usage."""
    meridiem = "AM" if moment.hour < 12 else "PM"
    return f"{meridiem}{moment.hour % 12}:{moment.minute:02d}"


def jp_spoken_clock(moment: datetime) -> str:
    """``午前1時`` / ``午後10時30分``: a time as a voice call says it."""
    meridiem = "午前" if moment.hour < 12 else "午後"
    minutes = f"{moment.minute}分" if moment.minute else ""
    return f"{meridiem}{moment.hour % 12}時{minutes}"


def jp_spoken_date(moment: datetime) -> str:
    """``7月19日、月曜日``: a date as a voice call says it."""
    return f"{moment.month}月{moment.day}日、{WEEKDAYS[moment.weekday()]}曜日"


def jp_spoken_range(start: datetime, end: datetime) -> str:
    """``7月19日、月曜日、午前1時から午前2時まで``."""
    return (f"{jp_spoken_date(start)}、{jp_spoken_clock(start)}から"
            f"{'翌日の' if end.date() != start.date() else ''}{jp_spoken_clock(end)}まで")


def jp_datetime(moment: datetime) -> str:
    """``2021年7月19日(月) AM1:00``."""
    return f"{jp_date(moment)} {jp_clock(moment)}"


def jp_stamp(moment: datetime) -> str:
    """``2021/07/19 01:00``: the date and time as a fax machine prints them on its header."""
    return f"{moment:%Y/%m/%d %H:%M}"


def jp_range(start: datetime, end: datetime,
             date: Callable[[datetime], str] = jp_date) -> str:
    """A slot as the seed writes it; the end drops its date on the same day, says 翌 on the next."""
    days_apart = (end.date() - start.date()).days
    if days_apart == 0:
        end_text = jp_clock(end)
    elif days_apart == 1:
        end_text = f"翌{jp_clock(end)}"
    else:
        end_text = f"{date(end)} {jp_clock(end)}"
    return f"{date(start)} {jp_clock(start)}{RANGE_SEPARATOR}{end_text}"


def jp_short_range(start: datetime, end: datetime) -> str:
    """``7/19(月) AM1:00～AM2:00``: a slot in an SMS."""
    return jp_range(start, end, jp_month_day)


def jp_duration(seconds: float) -> str:
    """``4分10秒``, ``2時間5分``, ``0.4秒``: a length of time on a console page."""
    return _duration(seconds, ("時間", "分", "秒"), "")


def spoken_duration(seconds: float) -> str:
    """``4 min 10 s``, ``2 h 5 min``, ``0.4 s``: a length of time in an operator's log line."""
    return _duration(seconds, (" h", " min", " s"), " ")


def _duration(seconds: float, units: tuple[str, str, str], gap: str) -> str:
    """``seconds`` in hours and minutes, or minutes and seconds, or tenths of a second
    under ten, each number followed by its unit (hour, minute, second) and ``gap``."""
    hour, minute, second = units
    if seconds < 10:
        return f"{seconds:.1f}{second}"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}{hour}{gap}{minutes}{minute}"
    return f"{minutes}{minute}{gap}{secs}{second}" if minutes else f"{secs}{second}"
