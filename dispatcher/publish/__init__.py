"""The schedule as a page, a calendar and a feed (`dispatcher publish`, and the daemon on
every change)."""

from __future__ import annotations

from dispatcher.publish.formats import CALENDAR, FEED, PAGE, Site, render_all, window_uid
from dispatcher.publish.site import Entry, Progress, Published, Version, entries, progress_at
from dispatcher.publish.writer import Publisher, publish, stamped

__all__ = [
    "CALENDAR",
    "FEED",
    "PAGE",
    "Entry",
    "Progress",
    "Published",
    "Publisher",
    "Site",
    "Version",
    "entries",
    "progress_at",
    "publish",
    "render_all",
    "stamped",
    "window_uid",
]
