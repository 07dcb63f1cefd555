"""Commands: parse arguments, call the modules, print. No logic of its own."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import Progress
from rich.table import Table

from dispatcher import logs, report
from dispatcher.channels import Backend, make_backends
from dispatcher.config import Config, load_config
from dispatcher.contacts import Contact, find_contact, in_audience
from dispatcher.daemon import Daemon
from dispatcher.demo import run_demo
from dispatcher.dispatch import Dispatcher, SendResult, send_notice
from dispatcher.errors import ArgumentError, DispatcherError, InputError, single
from dispatcher.inputs import Inputs, check_inputs, load_inputs
from dispatcher.ledger import (
    FINAL_STATES,
    DeliveryState,
    Ledger,
    NoticeRecord,
    engine_url,
    peek,
)
from dispatcher.mail import readable
from dispatcher.preview import ChannelTotals, Preview, Previewer, channels_to_preview
from dispatcher.render import Notice, Renderer, build_notice
from dispatcher.windows import (
    Channel,
    Phase,
    Slot,
    Window,
    active_slot,
    find_window,
    following_slot,
)

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
WindowArgument = Annotated[str, typer.Argument(help="The window's number or id.")]
PhaseArgument = Annotated[Phase, typer.Argument(help="Which notice.")]
ChannelsOption = Annotated[
    list[Channel] | None, typer.Option(help="Only this channel (repeatable).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@app.command()
def windows(
    config: ConfigOption = DEFAULT_CONFIG,
    now: Annotated[
        str | None, typer.Option(help="Evaluate the next notice at this ISO-8601 moment.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The window table: slots, notice policy and the next notice of each window."""
    cfg = load_config(config)
    active, states = asyncio.run(peek(engine_url(cfg.settings.ledger_url, cfg.path.parent)))
    views = report.window_views(cfg.windows, active, _parse_now(now, cfg.settings.timezone),
                                states)
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
    window: WindowArgument,
    phase: PhaseArgument,
    channel: ChannelsOption = None,
    contact: Annotated[str | None, typer.Option(help="Show what this contact receives.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write every message into this folder.")] = None,
    as_json: JsonOption = False,
    now: Annotated[str | None, typer.Option(help="The sending time (ISO-8601).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Render a notice as each contact would receive it, without sending anything."""
    inputs = load_inputs(config)
    cfg = inputs.config
    target = find_window(cfg.windows, window)
    active, _ = asyncio.run(peek(engine_url(cfg.settings.ledger_url, cfg.path.parent)))
    notice = build_notice(target, active_slot(target, active), phase,
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
              f"{notice.slot.name}: {_slot_text(notice)}", markup=False)
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
        headers, body = readable(previewer.email_headers_and_body(notice, message))
        for line in headers:
            out.print(line, markup=False)
        out.print()
        out.print(body, markup=False)
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


@app.command()
def send(
    window: WindowArgument,
    phase: PhaseArgument,
    channel: ChannelsOption = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be sent; send nothing.")] = False,
    yes: YesOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Send a notice now to every contact of the window's audience, each exactly once."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    if not target.broadcast:
        raise single(ArgumentError, "WINDOW", f"window {target.number} is not broadcast "
                     f"(notify = \"{target.notify.value}\"): it sends no notices")
    channels = _send_channels(target, channel)
    code = asyncio.run(_send(inputs, target, phase, channels, dry_run, yes))
    raise typer.Exit(code)


@app.command()
def status(
    window: WindowArgument,
    as_json: JsonOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Deliveries of each notice of a window, by channel and state, and every failure."""
    cfg = load_config(config)
    target = find_window(cfg.windows, window)
    notices = asyncio.run(_window_status(cfg, target))
    if as_json:
        _print_json({"window": target.id, "number": target.number, "notices": notices})
        return
    if not notices:
        out.print(f"window {target.number} ({target.id}): no notice sent yet", markup=False)
    for notice in notices:
        _print_notice_status(notice)


@app.command()
def retry(
    window: WindowArgument,
    phase: PhaseArgument,
    uncertain: Annotated[bool, typer.Option(
        help="Also re-send deliveries whose outcome is uncertain (may duplicate).")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Re-attempt the failed deliveries of a notice."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    code = asyncio.run(_retry(inputs, target, phase, uncertain))
    raise typer.Exit(code)


@app.command()
def postpone(
    window: WindowArgument,
    to: Annotated[str | None, typer.Option(
        help="The slot to move to (reserve-1, reserve-2, ...); default: the next one.")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    no_notice: Annotated[bool, typer.Option(
        "--no-notice", help="Do not send the postponed notice.")] = False,
    yes: YesOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Move a window to a reserve slot (予備日); a broadcast window sends a postponed notice."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    raise typer.Exit(asyncio.run(_postpone(inputs, target, to, reason, no_notice, yes)))


async def _postpone(inputs: Inputs, window: Window, to: str | None, reason: str,
                    no_notice: bool, yes: bool) -> int:
    cfg = inputs.config
    tz = cfg.settings.timezone
    async with _opened_ledger(cfg) as ledger:
        current = active_slot(window, await ledger.active_slots())
        new = _postponement_target(window, current, to)
        notice = build_notice(window, current, Phase.POSTPONED, _clock(), new)
        channels = list(window.channels) if window.broadcast and not no_notice else []
        dispatcher = Dispatcher(inputs, ledger, {}, _clock)
        dispatcher.preflight(notice, channels)
        backends = make_backends(cfg, channels, os.environ)
        out.print(f"window {window.number} ({window.id}): {current.name} "
                  f"{report.slot_range(current, tz)} → {new.name} {report.slot_range(new, tz)}",
                  markup=False)
        if not yes and not _confirmed_action(f"Move window {window.number} to {new.name}"
                                             + (" and send the postponed notice" * bool(channels))):
            err.print("cancelled: nothing was changed", markup=False)
            return 1
        states = await ledger.notice_states()
        await ledger.move_window(window.id, current.name, new.name, _operator(), reason,
                                 _clock())
        await ledger.audit(_operator(), "postpone", window.id,
                           {"from": current.name, "to": new.name, "reason": reason,
                            "notice": bool(channels)}, _clock())
        if states.get(f"{window.id}/{current.name}/start") in ("done", "sending"):
            out.print(f"the work in {current.name} was interrupted (中断): its end notice will "
                      f"not be sent; {new.name} gets its own start and end notices", markup=False)
        if not channels:
            return 0
        result = await _send_with_progress(inputs, ledger, backends, notice, channels)
    _print_send_result(result)
    return 1 if result.any_failed else 0


def _postponement_target(window: Window, current: Slot, to: str | None) -> Slot:
    names = [s.name for s in window.slots]
    if to is None:
        new = following_slot(window, current)
        if new is None:
            raise single(ArgumentError, "WINDOW", f"window {window.number} is already on its "
                         f"last slot ({current.name}): there is no reserve slot to move to")
        return new
    target = window.slot(to)
    later = names[names.index(current.name) + 1:]
    if target.name not in later:
        raise single(ArgumentError, "--to", f"window {window.number} is on {current.name}: "
                     f"it can only move forward, to {', '.join(later) or 'no slot'}")
    return target


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    log_format: Annotated[LogFormat, typer.Option(help="text for people, json for machines.")
                          ] = LogFormat.TEXT,
) -> None:
    """The daemon: sends each broadcast window's start and end notices on time."""
    logs.configure(log_format.value)
    daemon = Daemon(config, _clock)
    asyncio.run(daemon.run())


@app.command()
def demo(
    config: ConfigOption = DEFAULT_CONFIG,
    start_in: Annotated[int, typer.Option(help="Seconds until the window starts.")] = 20,
    duration: Annotated[int, typer.Option(help="Seconds the window lasts.")] = 40,
) -> None:
    """Run the daemon on a copy of the table whose broadcast window starts in 20 s."""
    load_inputs(config)
    logs.configure("text")
    plan = asyncio.run(run_demo(config, lambda line: out.print(line, markup=False),
                                timedelta(seconds=start_in), timedelta(seconds=duration)))
    folder = plan.folder
    out.print("done. Look at:", markup=False)
    for label, path in (("e-mails as received by the SMTP server", "received-mail"),
                        ("SMS (outbox)", "var/outbox/sms"), ("fax PDFs (outbox)", "var/outbox/fax"),
                        ("the ledger", "var/ledger.sqlite3"), ("the demo's table", "config.toml")):
        out.print(f"  {label}: {folder / path}", markup=False)
    out.print(f"  and: dispatcher status 3 -c {plan.config}", markup=False)


def _send_channels(window: Window, only: list[Channel] | None) -> list[Channel]:
    if not only:
        return list(window.channels)
    unknown = [c.value for c in only if c not in window.channels]
    if unknown:
        raise single(ArgumentError, "--channel", f"window {window.number} does not use "
                     f"{', '.join(unknown)} (its channels: {', '.join(window.channels)})")
    return list(dict.fromkeys(only))


def _clock() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def _opened_ledger(cfg: Config) -> AsyncIterator[Ledger]:
    ledger = await Ledger.open(engine_url(cfg.settings.ledger_url, cfg.path.parent))
    try:
        yield ledger
    finally:
        await ledger.close()


async def _send(inputs: Inputs, window: Window, phase: Phase, channels: list[Channel],
                dry_run: bool, yes: bool) -> int:
    cfg = inputs.config
    async with _opened_ledger(cfg) as ledger:
        slot = active_slot(window, await ledger.active_slots())
        notice = build_notice(window, slot, phase, _clock())
        dispatcher = Dispatcher(inputs, ledger, {}, _clock)
        dispatcher.preflight(notice, channels)
        existing = await ledger.notice(window.id, slot.name, phase.value)
        audience = dispatcher.audience(notice)
        _print_send_plan(notice, audience, channels, existing)
        if dry_run:
            out.print("dry run: nothing was sent", markup=False)
            return 0
        backends = make_backends(cfg, channels, os.environ)
        if not yes and not _confirmed(notice, len(audience)):
            err.print("cancelled: nothing was sent", markup=False)
            return 1
        result = await _send_with_progress(inputs, ledger, backends, notice, channels)
        await ledger.audit(_operator(), "send", window.id,
                           {"phase": phase.value, "slot": slot.name,
                            "channels": [c.value for c in channels],
                            "new_deliveries": result.plan.added}, _clock())
    _print_send_result(result)
    return 1 if result.any_failed else 0


async def _send_with_progress(inputs: Inputs, ledger: Ledger,
                              backends: Mapping[Channel, Backend], notice: Notice,
                              channels: list[Channel]) -> SendResult:
    """Send, with a live progress bar per channel (on standard error)."""
    with Progress(console=err) as progress:
        tasks = {channel: progress.add_task(channel.value, total=None) for channel in channels}

        def planned(counts: Mapping[tuple[str, str], int]) -> None:
            for channel, task in tasks.items():
                mine = {s: n for (c, s), n in counts.items() if c == channel.value}
                done = sum(n for s, n in mine.items() if DeliveryState(s) in FINAL_STATES)
                progress.update(task, total=sum(mine.values()), completed=done)

        def advance(channel: Channel, state: DeliveryState) -> None:
            if state in FINAL_STATES:
                progress.advance(tasks[channel])

        dispatcher = Dispatcher(inputs, ledger, backends, _clock, on_progress=advance)
        try:
            return await send_notice(dispatcher, notice, channels, f"operator:{_operator()}",
                                     planned)
        finally:
            await _close_all(dispatcher, backends)


async def _close_all(dispatcher: Dispatcher, backends: Mapping[Channel, Backend]) -> None:
    await dispatcher.close()
    for backend in backends.values():
        await backend.close()


def _confirmed(notice: Notice, audience: int) -> bool:
    return _confirmed_action(f"Send the {notice.phase.value} notice of window "
                             f"{notice.window.number} to {audience} contacts now")


def _confirmed_action(question: str) -> bool:
    if not sys.stdin.isatty():
        raise single(ArgumentError, "--yes", "standard input is not a terminal, so there is "
                     "no one to confirm: add --yes")
    return typer.confirm(f"{question}?", default=False)


def _operator() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _print_send_plan(notice: Notice, audience: list[Contact], channels: list[Channel],
                     existing: NoticeRecord | None) -> None:
    window = notice.window
    out.print(f"window {window.number} ({window.id}) {notice.phase.value}, {notice.slot.name}: "
              f"{_slot_text(notice)}", markup=False)
    for channel in channels:
        reachable = sum(1 for c in audience if c.address(channel))
        lacking = len(audience) - reachable
        note = f", {lacking} without an address" if lacking else ""
        out.print(f"  {channel.value}: {reachable} recipients{note}", markup=False)
    if existing is not None:
        out.print(f"  this notice was started on {existing.created_at.isoformat()} by "
                  f"{existing.triggered_by}: only what is not yet sent will go out", markup=False)


def _print_send_result(result: SendResult) -> None:
    if result.already_done:
        out.print("nothing new to send: every delivery of this notice was already final",
                  markup=False)
    record = result.notice
    out.print(f"notice {record.window_id} {record.slot} {record.phase}: {record.state}",
              markup=False)
    table = Table()
    present = {state for _, state in result.counts}
    states = [s.value for s in DeliveryState if s.value in present]
    table.add_column("channel")
    for state in states:
        table.add_column(state, justify="right")
    for channel in sorted({c for c, _ in result.counts}):
        table.add_row(channel, *[str(result.counts.get((channel, s), 0)) for s in states])
    out.print(table)
    for channel, lacking in result.plan.lacking.items():
        if lacking:
            out.print(f"{channel.value}: {len(lacking)} contacts have no address: "
                      f"{', '.join(lacking)}", markup=False)
    for failure in result.failures:
        out.print(f"{failure.state}: {failure.channel} {failure.contact_id} {failure.address}: "
                  f"{failure.last_error}", markup=False)


async def _window_status(cfg: Config, window: Window) -> list[dict[str, Any]]:
    async with _opened_ledger(cfg) as ledger:
        notices = []
        for record in await ledger.notices_of(window.id):
            counts = await ledger.counts(record.id)
            failures = await ledger.deliveries_of(
                record.id, [DeliveryState.FAILED.value, DeliveryState.UNCERTAIN.value])
            notices.append(report.notice_status(record, counts, failures))
        return notices


def _print_notice_status(notice: dict[str, Any]) -> None:
    out.print(f"{notice['phase']} ({notice['slot']}): {notice['state']}, triggered by "
              f"{notice['triggered_by']} at {notice['created_at']}", markup=False)
    for channel, states in notice["channels"].items():
        summary = ", ".join(f"{state} {count}" for state, count in states.items())
        out.print(f"  {channel}: {summary}", markup=False)
    for failure in notice["failures"]:
        out.print(f"  {failure['state']}: {failure['channel']} {failure['contact']} "
                  f"{failure['address']}: {failure['reason']}", markup=False)


async def _retry(inputs: Inputs, window: Window, phase: Phase, uncertain: bool) -> int:
    cfg = inputs.config
    async with _opened_ledger(cfg) as ledger:
        slot = active_slot(window, await ledger.active_slots())
        record = await ledger.notice(window.id, slot.name, phase.value)
        if record is None:
            raise single(ArgumentError, "PHASE", f"window {window.number} has no "
                         f"{phase.value} notice for {slot.name} yet: use send")
        states = [DeliveryState.FAILED.value, *([DeliveryState.UNCERTAIN.value] * uncertain)]
        requeued = await ledger.requeue(record.id, states, _clock())
        out.print(f"{requeued} deliveries to try again", markup=False)
        channels = [c for c in window.channels
                    if any(ch == c.value for ch, _ in await ledger.counts(record.id))]
        backends = make_backends(cfg, channels, os.environ)
        notice = build_notice(window, slot, phase, _clock())
        result = await _send_with_progress(inputs, ledger, backends, notice, channels)
        await ledger.audit(_operator(), "retry", window.id,
                           {"phase": phase.value, "slot": slot.name, "requeued": requeued},
                           _clock())
    _print_send_result(result)
    return 1 if result.any_failed else 0


def _slot_text(notice: Notice) -> str:
    return report.slot_range(notice.slot, notice.slot.start.tzinfo or UTC)


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
                   "next notice", "sent"):
        table.add_column(column, no_wrap=column != "title")
    for view in views:
        window = view.window
        table.add_row(
            str(window.number), window.title, view.active.name, report.slot_range(view.active, tz),
            "\n".join(report.slot_range(s, tz, with_name=True) for s in window.reserves) or "-",
            window.notify.value, ", ".join(window.channels) or "-",
            report.next_notice_text(view.next, tz), view.notices_text(),
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
    if window.broadcast:
        lines.append(f"    notices: {view.notices_text()}")
    return "\n".join(lines)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def main() -> None:
    """Console entry point: bad input becomes one clear message and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    except DispatcherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
