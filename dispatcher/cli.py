"""Commands: parse arguments, call the modules, print. No logic of its own."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from dispatcher import report
from dispatcher.config import Config, load_config
from dispatcher.errors import ArgumentError, InputError, single
from dispatcher.inputs import load_inputs

app = typer.Typer(
    help="Sends maintenance-window notices by fax, e-mail and SMS, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="The window table; paths inside it are relative to it."),
]
DEFAULT_CONFIG = Path("config.toml")


@app.command()
def windows(
    config: ConfigOption = DEFAULT_CONFIG,
    now: Annotated[
        str | None, typer.Option(help="Evaluate the next notice at this ISO-8601 moment.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """The window table: slots, notice policy and the next notice of each window."""
    cfg = load_config(config)
    views = report.window_views(cfg.windows, {}, _parse_now(now, cfg.settings.timezone))
    if as_json:
        _print_json([view.to_json() for view in views])
    else:
        _print_windows(views, cfg)


@app.command()
def check(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Validate the config, contacts and templates; list every problem (exit 2) or a summary."""
    inputs = load_inputs(config)
    summary = report.summarise(inputs.config, inputs.contacts)
    out.print(f"ok: {inputs.config.path}", markup=False)
    for line in summary.lines():
        out.print(f"  {line}", markup=False)
    for warning in summary.warnings:
        out.print(f"warning: {warning}", markup=False, style="yellow")


def _parse_now(value: str | None, tz: tzinfo) -> datetime:
    if value is None:
        return datetime.now(tz)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise single(ArgumentError, "--now",
                     f"{value!r} is not an ISO-8601 date-time, e.g. 2021-07-19T00:30:00+09:00"
                     ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _print_windows(views: list[report.WindowView], cfg: Config) -> None:
    """A table where the terminal is wide enough, else one block per window."""
    table = _windows_table(views, cfg)
    wide = out.options.update_width(10_000)
    if Measurement.get(out, wide, table).maximum <= out.width:
        out.print(table)
        return
    out.print(table.title, markup=False)
    for view in views:
        out.print(_window_block(view, cfg.settings.timezone), markup=False)


def _windows_table(views: list[report.WindowView], cfg: Config) -> Table:
    tz = cfg.settings.timezone
    table = Table(title=f"{cfg.path} (times in {tz})")
    for column in ("#", "title", "active slot", "time", "reserve", "notice", "channels",
                   "next notice"):
        table.add_column(column, no_wrap=column != "title")
    for view in views:
        window = view.window
        table.add_row(
            str(window.number), window.title, view.active.name, report.slot_range(view.active, tz),
            "\n".join(report.slot_range(s, tz, with_name=True) for s in window.reserves) or "-",
            window.notify.value, ", ".join(window.channels) or "-",
            report.next_notice_text(view.next, tz),
        )
    return table


def _window_block(view: report.WindowView, tz: tzinfo) -> str:
    window = view.window
    channels = f" ({', '.join(window.channels)})" if window.channels else ""
    lines = [f"#{window.number} {window.title}  [{window.id}]",
             f"    notice: {window.notify.value}{channels}"]
    for slot in window.slots:
        marker = "▶" if slot == view.active else " "
        lines.append(f"  {marker} {slot.name:<10} {report.slot_range(slot, tz)}")
    lines.append(f"    next notice: {report.next_notice_text(view.next, tz)}")
    return "\n".join(lines)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def main() -> None:
    """Console entry point: bad input becomes one clear message and exit code 2."""
    try:
        app()
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
