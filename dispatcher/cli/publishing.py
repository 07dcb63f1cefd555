"""`publish --out DIR`: the schedule as a page, a calendar and a feed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    opened_ledger,
    out,
    parse_now,
    run_async,
)
from dispatcher.errors import ArgumentError, single
from dispatcher.table import Config, load_config


def publish_files(
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write the files here (default: [publish] path).")] = None,
    now: Annotated[str | None, typer.Option(
        help="Publish as of this ISO-8601 moment instead of now.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Write index.html, maintenance.ics and feed.atom from the table and the ledger."""
    cfg = load_config(config)
    folder = out_dir or cfg.publish.path
    if folder is None:
        raise single(ArgumentError, "--out",
                     "where to write? Give --out DIR, or set [publish] path in the config")
    moment = parse_now(now, cfg.settings.timezone)
    for path in run_async(_publish(cfg, folder, moment)):
        out.print(f"wrote {path}", markup=False)


async def _publish(cfg: Config, folder: Path, now: datetime) -> list[Path]:
    from dispatcher.publish import publish  # icalendar and feedgen: for this command only

    async with opened_ledger(cfg) as ledger:
        return await publish(cfg, ledger, folder, now)
