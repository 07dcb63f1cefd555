"""The schedule as a page, a calendar and a feed (`dispatcher publish`, and the daemon on
every change)."""

from __future__ import annotations

from dispatcher.publish.formats import CALENDAR, FEED, PAGE, Site, render_all, window_uid
from dispatcher.publish.site import (
    PROGRESS_LABELS,
    Entry,
    Published,
    PublishedState,
    Version,
    entries,
)
from dispatcher.publish.writer import Publisher, publish, stamped

__all__ = [
    "CALENDAR",
    "FEED",
    "PAGE",
    "PROGRESS_LABELS",
    "Entry",
    "Published",
    "PublishedState",
    "Publisher",
    "Site",
    "Version",
    "entries",
    "publish",
    "render_all",
    "stamped",
    "window_uid",
]
