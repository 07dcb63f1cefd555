"""`preview`: every message as its contact will get it, before anything is sent."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.engine import URL

from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ChannelsOption,
    ConfigOption,
    JsonOption,
    LeadOption,
    PhaseArgument,
    WindowArgument,
    err,
    lead_of,
    out,
    parse_moment,
    parse_now,
    print_json,
    run_async,
    slot_text,
)
from dispatcher.errors import InputError, single
from dispatcher.keys import KeyFile
from dispatcher.ledger import Ledger, engine_url, may_exist, peek
from dispatcher.render import (
    ChannelTotals,
    Preview,
    Previewer,
    Renderer,
    channels_to_preview,
    readable,
    write_fax_png,
    write_png,
)
from dispatcher.schedule import timeline
from dispatcher.send import current_notice
from dispatcher.table import (
    Channel,
    Contact,
    Notice,
    Phase,
    Window,
    active_slot,
    find_contact,
    find_window,
    in_audience,
    load_inputs,
    notice_in_work,
    work_of,
)


async def _postponed_notice(url: URL, window: Window) -> Notice:
    ledger = await Ledger.open(url)
    try:
        return await current_notice(ledger, window, Phase.POSTPONED)
    finally:
        await ledger.close()


def preview(
    window: WindowArgument,
    phase: PhaseArgument,
    lead: LeadOption = None,
    channel: ChannelsOption = None,
    contact: Annotated[str | None, typer.Option(help="Show what this contact receives.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write every message into this folder.")] = None,
    as_json: JsonOption = False,
    now: Annotated[str | None, typer.Option(help="The sending time (ISO-8601).")] = None,
    text: Annotated[str | None, typer.Option(
        help="update: the text of the update, as `dispatcher update` would send it.")] = None,
    until: Annotated[str | None, typer.Option(
        help="extended: the new end (ISO-8601), as `dispatcher extend` would send it.")
    ] = None,
    fax_resolution: Annotated[bool, typer.Option(
        "--fax-resolution",
        help="Write each fax page's image as a fax machine prints it (1 bit, 204×196 dpi).")
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Render a notice as each contact would receive it, without sending anything."""
    if fax_resolution and contact is None and out is None:
        raise single(InputError, "--fax-resolution",
                     "writes an image of each fax page: give --contact or --out")
    inputs = load_inputs(config)
    cfg = inputs.config
    target = find_window(cfg.windows, window)
    url = engine_url(cfg.settings.ledger_url, cfg.path.parent)
    sent_at = parse_now(now, cfg.settings.timezone)
    if phase is Phase.POSTPONED and may_exist(url):  # of the slot the window left, if moved
        notice = run_async(_postponed_notice(url, target))
    else:
        seen = run_async(peek(url))
        slot = active_slot(target, seen.active_slots)
        work = work_of(target, slot, seen.work_reports)
        tz = cfg.settings.timezone
        notice = notice_in_work(target, work, phase, lead_of(lead), sent_at, text,
                                parse_moment(until, tz, "--until") if until else None)
    if now is None:  # dated as it will be sent: a notice of the timeline at its own time
        sent_at = _scheduled_at(notice) or sent_at
    channels = channels_to_preview(notice.channels, channel)
    if not target.broadcast:
        err.print(f"note: window {target.number} is not broadcast (notify = "
                  f"\"{target.notify.value}\"): this is only a preview", markup=False)
    renderer = Renderer.of(inputs)
    keys = KeyFile(cfg.receipts.secret_file).keys()  # the tokens that go out
    if contact is None:
        audience = in_audience(inputs.contacts, target.audience)
        everyone = Previewer(cfg, renderer, out, sent_at, keys,
                             write_fax_png if fax_resolution else None)
        _preview_all(everyone, notice, audience, channels, as_json)
        return
    recipient = find_contact(inputs.contacts, contact)
    folder = out or Path(tempfile.mkdtemp(prefix="dispatcher-preview-"))
    previewer = Previewer(cfg, renderer, folder, sent_at, keys,
                          write_fax_png if fax_resolution else write_png)
    _preview_one(previewer, notice, recipient, channels, as_json)


def _scheduled_at(notice: Notice) -> datetime | None:
    """When the daemon sends ``notice`` (an advance notice, a reminder, the start, a
    scheduled end), or None for one an operator's report or action sends."""
    return next((at for scheduled, at, _ in timeline(notice.window, notice.slot, timedelta(0))
                 if scheduled.key == notice.key), None)


def _preview_one(previewer: Previewer, notice: Notice, contact: Contact,
                 channels: list[Channel], as_json: bool) -> None:
    previews = [(c, previewer.preview(notice, contact, c)) for c in channels]
    if as_json:
        print_json([p.to_json() for _, p in previews if p is not None])
        return
    out.print(f"window {notice.window.number} ({notice.window.id}), {notice.phase.value}, "
              f"{notice.slot.name}: {slot_text(notice)}", markup=False)
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
    elif message.channel is Channel.VOICE:
        out.rule(f"voice call to {message.address}", characters="─")
        out.print(message.body, markup=False, soft_wrap=True)
        for path in item.files:
            out.print(f"  {path}", markup=False)
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
        print_json([p.to_json() for p in previews])
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
