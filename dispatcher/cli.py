"""Commands: parse arguments, call the modules, print. No logic of its own."""

from __future__ import annotations

import email
import email.policy
import json
import sys
import tempfile
from collections.abc import Iterable
from datetime import datetime, tzinfo
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import Progress
from rich.table import Table

from dispatcher import report
from dispatcher.config import Config, load_config
from dispatcher.contacts import Contact, find_contact, in_audience
from dispatcher.errors import ArgumentError, InputError, single
from dispatcher.inputs import check_inputs, load_inputs
from dispatcher.mail import readable_headers
from dispatcher.preview import ChannelTotals, Preview, Previewer, channels_to_preview
from dispatcher.render import Notice, Renderer, build_notice
from dispatcher.timefmt import jp_range
from dispatcher.windows import Channel, Phase, active_slot, find_window

app = typer.Typer(
    help="Sends maintenance-window notices by fax, e-mail and SMS, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

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
    problems = check_inputs(inputs, datetime.now(inputs.config.settings.timezone))
    if problems:
        raise InputError(problems)
    summary = report.summarise(inputs.config, inputs.contacts)
    out.print(f"ok: {inputs.config.path}", markup=False)
    for line in summary.lines():
        out.print(f"  {line}", markup=False)
    for warning in summary.warnings:
        out.print(f"warning: {warning}", markup=False, style="yellow")


@app.command()
def preview(
    window: Annotated[str, typer.Argument(help="The window's number or id.")],
    phase: Annotated[Phase, typer.Argument(help="Which notice.")],
    channel: Annotated[
        list[Channel] | None, typer.Option(help="Only this channel (repeatable).")
    ] = None,
    contact: Annotated[str | None, typer.Option(help="Show what this contact receives.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write every message into this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    now: Annotated[str | None, typer.Option(help="The sending time (ISO-8601).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Render a notice as each contact would receive it, without sending anything."""
    inputs = load_inputs(config)
    cfg = inputs.config
    target = find_window(cfg.windows, window)
    notice = build_notice(target, active_slot(target, {}), phase,
                          _parse_now(now, cfg.settings.timezone))
    channels = channels_to_preview(target.channels, channel)
    if not target.broadcast:
        err.print(f"note: window {target.number} is not broadcast (notify = "
                  f"\"{target.notify.value}\"): this is only a preview", markup=False)
    renderer = Renderer(cfg.settings.templates_dir, cfg)
    if contact is None:
        audience = in_audience(inputs.contacts, target.audience)
        _preview_all(Previewer(cfg, renderer, out), notice, audience, channels, as_json)
        return
    recipient = find_contact(inputs.contacts, contact)
    folder = out or Path(tempfile.mkdtemp(prefix="dispatcher-preview-"))
    _preview_one(Previewer(cfg, renderer, folder, fax_png=True), notice, recipient, channels,
                 as_json)


def _preview_one(previewer: Previewer, notice: Notice, contact: Contact,
                 channels: list[Channel], as_json: bool) -> None:
    previews = [(c, previewer.preview(notice, contact, c)) for c in channels]
    if as_json:
        _print_json([p.to_json() for _, p in previews if p is not None])
        return
    out.print(f"window {notice.window.number} ({notice.window.id}), {notice.phase.value}, "
              f"{notice.slot.name}: {jp_range(notice.slot.start, notice.slot.end)}", markup=False)
    out.print(f"contact {contact.id}: {contact.merchant} {contact.name}", markup=False)
    for channel, item in previews:
        if item is None:
            out.rule(f"{channel.value}: no address", characters="─")
            continue
        _print_preview(previewer, notice, item)
    out.print(f"files: {previewer.out_dir}", markup=False)


def _print_preview(previewer: Previewer, notice: Notice, item: Preview) -> None:
    message = item.message
    if message.channel is Channel.EMAIL:
        out.rule(f"email to {message.address}", characters="─")
        raw = previewer.email_headers_and_body(notice, message)
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        for line in readable_headers(mail):
            out.print(line, markup=False)
        out.print()
        out.print(mail.get_content(), markup=False)
    elif message.channel is Channel.SMS:
        out.rule(f"sms to {message.address}: {message.segments}", characters="─")
        out.print(message.body, markup=False, soft_wrap=True)
    else:
        out.rule(f"fax to {message.address}: {item.pages} page(s)", characters="─")
        for path in item.files:
            out.print(f"  {path}", markup=False)


def _preview_all(previewer: Previewer, notice: Notice, contacts: list[Contact],
                 channels: list[Channel], as_json: bool) -> None:
    totals = {c: ChannelTotals(c) for c in channels}
    previews: list[Preview] = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("rendering", total=len(contacts) * len(channels))
        for contact in contacts:
            for channel in channels:
                item = previewer.preview(notice, contact, channel)
                totals[channel].add(contact, item)
                if item is not None and as_json:
                    previews.append(item)
                progress.advance(task)
    if as_json:
        _print_json([p.to_json() for p in previews])
        return
    out.print(_totals_table(notice, len(contacts), totals.values(), previewer), markup=False)
    if previewer.out_dir:
        out.print(f"files: {previewer.out_dir}", markup=False)


def _totals_table(notice: Notice, audience: int, totals: Iterable[ChannelTotals],
                  previewer: Previewer) -> Table:
    table = Table(title=f"window {notice.window.number} {notice.phase.value}: dry run for "
                        f"{audience} contacts")
    for column in ("channel", "recipients", "no address", "SMS segments", "fax pages"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for t in totals:
        table.add_row(
            t.channel.value, str(t.recipients), str(len(t.lacking)),
            str(t.segments) if t.channel is Channel.SMS else "-",
            f"{t.pages} ({previewer.distinct_fax_pages} distinct)"
            if t.channel is Channel.FAX else "-",
        )
    return table


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
