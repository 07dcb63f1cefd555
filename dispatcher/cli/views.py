"""`windows`, `check` and `status`: the table, the inputs and the ledger, as read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any

import typer
from rich.measure import Measurement
from rich.table import Table

from dispatcher.cli import report
from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    WindowArgument,
    opened_ledger,
    out,
    parse_now,
    print_json,
    run_async,
)
from dispatcher.ledger import (
    ALERT_SEND_SECONDS,
    ALERT_SHOWN,
    NOT_REACHED_STATES,
    engine_url,
    failing,
    peek,
)
from dispatcher.send import fix_of
from dispatcher.table import (
    Config,
    Window,
    active_slot,
    find_window,
    jp_datetime,
    load_config,
    work_of,
)


def windows(
    config: ConfigOption = DEFAULT_CONFIG,
    now: Annotated[
        str | None, typer.Option(help="Evaluate the next notice at this ISO-8601 moment.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The window table: slots, notice policy and the next notice of each window."""
    cfg = load_config(config)
    seen = run_async(peek(engine_url(cfg.settings.ledger_url, cfg.path.parent)))
    views = report.window_views(cfg.windows, seen.active_slots,
                                parse_now(now, cfg.settings.timezone), seen.notice_states,
                                seen.work_reports,
                                timedelta(minutes=cfg.settings.overrun_after_minutes),
                                seen.notice_failures)
    if as_json:
        print_json([view.to_json() for view in views], cfg.settings.timezone)
    else:
        _print_windows(views, cfg)


def status(
    window: WindowArgument,
    as_json: JsonOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Deliveries of each notice of a window, by channel and state, and every failure."""
    cfg = load_config(config)
    target = find_window(cfg.windows, window)
    notices, work, troubles = run_async(_window_status(cfg, target))
    suppressed = len(run_async(peek(engine_url(cfg.settings.ledger_url,
                                               cfg.path.parent))).suppressions)
    if as_json:
        print_json({"window": target.id, "number": target.number, "notices": notices,
                    "work": work, "suppressed": suppressed, **troubles},
                   cfg.settings.timezone)
        return
    tz = cfg.settings.timezone
    out.print(report.work_text(work, tz), markup=False)
    for line in report.trouble_lines(troubles, tz):
        out.print(line, markup=False, style="red")
    if suppressed:
        out.print(f"{suppressed:,} addresses suppressed, not sent to (`dispatcher suppress "
                  "list`)", markup=False)
    for line in report.set_aside_lines(troubles["set_aside"]):
        out.print(line, markup=False, style="yellow")
    if not notices:
        out.print(f"window {target.number} ({target.id}): no notice sent yet", markup=False)
    for notice in notices:
        _print_notice_status(notice, tz)


async def _window_status(cfg: Config, window: Window
                         ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    async with opened_ledger(cfg) as ledger:
        now = datetime.now(UTC)
        slot = active_slot(window, await ledger.active_slots())
        work = report.work_json(work_of(window, slot, await ledger.work_reports()), now)
        troubles = {
            "failing": [{**f.to_json(), "fix": _fix_text(f.fix)} for f in failing(
                await ledger.notice_failures(window.id), await ledger.notice_states(),
                await ledger.active_slots()).values()],
            "alerts_not_sent": [a.to_json() for a in await ledger.alert_troubles(
                now - ALERT_SEND_SECONDS, now - ALERT_SHOWN)
                if a.alert.startswith(f"alert/{window.id}/")],
            "set_aside": [report.set_aside_json(row) for row in await ledger.set_aside()
                          if not window.audience or row.tags & set(window.audience)]}
        notices = []
        for record in await ledger.notices_of(window.id):
            counts = await ledger.counts(record.id)
            failures = await ledger.deliveries_of(
                record.id, [s.value for s in NOT_REACHED_STATES])
            outages = await ledger.outages_of(record.id)
            waiting = await ledger.waiting(record.id)
            notices.append(report.notice_status(record, counts, failures, outages, waiting,
                                                await ledger.confirmed_count(record.id)))
        return notices, work, troubles


def _fix_text(code: str) -> str:
    fix = fix_of(code)
    return fix.text if fix is not None else code


def _print_notice_status(notice: dict[str, Any], tz: tzinfo) -> None:
    created = jp_datetime(notice["created_at"].astimezone(tz))
    out.print(f"{notice['phase']} ({notice['slot']}): {notice['state']}, triggered by "
              f"{notice['triggered_by']} at {created}", markup=False)
    for channel, states in notice["channels"].items():
        summary = ", ".join(f"{state} {count}" for state, count in states.items())
        out.print(f"  {channel}: {summary}", markup=False)
    if notice["confirmed"]:
        out.print(f"  confirmed by {notice['confirmed']:,} contacts", markup=False)
    for line in report.outage_lines(notice["outages"], tz):
        out.print(f"  {line}", markup=False)
    for waiting in notice["waiting"]:
        out.print(f"  waiting: {waiting['channel']} {waiting['count']:,} deliveries, "
                  f"pending after: {waiting['reason']}", markup=False)
    expired: Counter[tuple[str, str]] = Counter()
    for failure in notice["failures"]:
        if failure["state"] == "expired":
            expired[failure["channel"], failure["reason"]] += 1
            continue
        out.print(f"  {failure['state']}: {failure['channel']} {failure['contact']} "
                  f"{failure['address']}: {failure['reason']}", markup=False)
    for (channel, reason), count in expired.items():
        out.print(f"  expired: {channel} {count:,} deliveries, not sent: {reason}",
                  markup=False)


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
    width = max(len(slot.name) for slot in window.slots)
    for slot in window.slots:
        marker = "▶" if slot == view.active else " "
        lines.append(f"  {marker} {slot.name:<{width}}  {report.slot_range(slot, tz)}")
    lines.append(f"    next notice: {report.next_notice_text(view.next, tz)}")
    if window.broadcast:
        lines.append(f"    notices: {view.notices_text()}")
    return "\n".join(lines)
