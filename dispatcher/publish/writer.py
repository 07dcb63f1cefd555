"""Publishing: the entries as of ``now``, numbered by the ledger, written as three files,
each to a temporary name and renamed, so a reader never sees half a file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from dispatcher.files import replace_file
from dispatcher.ledger import Ledger
from dispatcher.publish.formats import Site, render_all
from dispatcher.publish.site import Entry, Published, Version, by_start, cancelled, entries
from dispatcher.table import Config


async def publish(config: Config, ledger: Ledger, out_dir: Path, now: datetime,
                  current: Mapping[str, Mapping[str, Any]] | None = None) -> list[Path]:
    """Write the page, the calendar and the feed of ``config``'s table to ``out_dir``."""
    published = await stamped(config, ledger, now, current)
    settings = config.publish
    site = Site.of(config, settings.base_url, settings.refresh, now)
    return write_files(out_dir, render_all(published, site))


class Publisher:
    """The daemon's publisher: writes the files when what they would show has changed
    (a table edit, a postponement, a window starting or ending), not on every tick."""

    def __init__(self) -> None:
        self._shown: tuple[Config, dict[str, dict[str, Any]]] | None = None

    async def refresh(self, config: Config, ledger: Ledger, now: datetime) -> list[Path]:
        """The files written, or nothing when they would not change."""
        out_dir = config.publish.path
        if out_dir is None:
            return []
        current = await _current(config, ledger, now)
        if self._shown is not None and self._shown == (config, current):
            return []
        written = await publish(config, ledger, out_dir, now, current)
        self._shown = (config, current)
        return written


async def stamped(config: Config, ledger: Ledger, now: datetime,
                  current: Mapping[str, Mapping[str, Any]] | None = None) -> list[Published]:
    """Every window ever published, as of ``now``, with its version from the ledger."""
    if current is None:
        current = await _current(config, ledger, now)
    records = await ledger.stamp_publications(
        current, lambda s: cancelled(s).snapshot(), now,
        lambda s: Entry.from_snapshot(s).shown_since())
    return by_start([Published(Entry.from_snapshot(r.content), Version(r.sequence, r.updated_at))
                     for r in records])


async def _current(config: Config, ledger: Ledger, now: datetime) -> dict[str, dict[str, Any]]:
    found = entries(config, await ledger.active_slots(), now, await ledger.work_reports())
    return {e.window_id: e.snapshot() for e in found}


def write_files(out_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    # 0644: a web server serving the folder must read them
    return [replace_file(out_dir / name, data, 0o644) for name, data in files.items()]
