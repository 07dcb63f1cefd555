"""`report WINDOW`: the night of a window as its 作業報告 will tell it, from the ledger: the
slot and the work as reported, each notice per channel (how many in each state, why the
failed ones failed, when the first, half, nine in ten and last were handed over), and the
operators' actions. The figures are `status`'s, read the same way."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any

import typer

from dispatcher.cli import report
from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    WindowArgument,
    clock,
    opened_ledger,
    out,
    print_json,
    run_async,
)
from dispatcher.receipts import channel_figures
from dispatcher.table import (
    Config,
    Window,
    WorkState,
    active_slot,
    find_window,
    jp_datetime,
    load_config,
    work_of,
)


def night_report(
    window: WindowArgument,
    slot: Annotated[str | None, typer.Option(
        help="The slot whose night to report (default: the window's active slot).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """The 作業報告 of a window's night, from the ledger: the work as reported, each notice
    per channel, and the operators' actions."""
    cfg = load_config(config)
    target = find_window(cfg.windows, window)
    data = run_async(_gather(cfg, target, slot))
    tz = cfg.settings.timezone
    if as_json:
        print_json(data, tz)
    else:
        for line in _lines(data, tz):
            out.print(line, markup=False)


async def _gather(cfg: Config, window: Window, slot_name: str | None) -> dict[str, Any]:
    now = clock()
    async with opened_ledger(cfg, create=False) as ledger:
        slot = (window.slot(slot_name) if slot_name is not None
                else active_slot(window, await ledger.active_slots()))
        work = work_of(window, slot, await ledger.work_reports())
        notices = []
        for record in await ledger.notices_of(window.id):
            if record.slot != slot.name:
                continue
            deliveries = await ledger.deliveries_of(record.id)
            channels = sorted({d.channel for d in deliveries})
            notices.append({
                "phase": record.phase, "state": record.state,
                "triggered_by": record.triggered_by, "created_at": record.created_at,
                "finished_at": record.finished_at,
                "confirmed": await ledger.confirmed_count(record.id),
                "channels": [channel_figures(c, deliveries).to_json() for c in channels]})
        actions = [{"at": e["at"], "actor": e["actor"], "action": e["action"],
                    "detail": e["detail"]} for e in await ledger.audit_entries(window.id)]
    over = work.state(now) is WorkState.COMPLETED  # done and interrupted are too
    return {"window": window.id, "number": window.number, "title": window.title,
            "slot": slot.name, "start": slot.start, "end": slot.end,
            "in_progress": not over, "as_of": now.astimezone(UTC),
            "work": report.work_json(work, now), "notices": notices, "actions": actions}


def _lines(data: dict[str, Any], tz: tzinfo) -> list[str]:
    def at(moment: datetime | None) -> str:
        return jp_datetime(moment.astimezone(tz)) if moment is not None else "-"

    def second(moment: datetime | None) -> str:
        return f"{moment.astimezone(tz):%m/%d %H:%M:%S}" if moment is not None else "-"

    lines = [f"作業報告: window {data['number']} ({data['window']}) {data['title']}, "
             f"{data['slot']} {at(data['start'])} – {at(data['end'])}"]
    if data["in_progress"]:
        lines.insert(0, f"(the night is still in progress: figures as of {at(data['as_of'])})")
    lines.append(report.work_text(data["work"], tz))
    if not data["notices"]:
        lines.append("notices: none sent in this slot")
    for notice in data["notices"]:
        lines.append(f"{notice['phase']}: {notice['state']}, by {notice['triggered_by']} at "
                     f"{at(notice['created_at'])}"
                     + (f"; confirmed by {notice['confirmed']:,}" if notice["confirmed"] else ""))
        for figures in notice["channels"]:
            states = ", ".join(f"{s} {n:,}" for s, n in figures["states"].items())
            handed = figures["handed_over"]
            lines.append(f"  {figures['channel']}: {figures['total']:,} ({states}); handed "
                         f"over from {second(handed['first'])}, half by "
                         f"{second(handed['half'])}, 9/10 by {second(handed['nine_in_ten'])}, "
                         f"all by {second(handed['last'])}")
            lines += [f"    {count:,} × {why}" for why, count in figures["failures"].items()]
    lines.append("operators' actions:" if data["actions"] else "operators' actions: none")
    lines += [f"  {at(a['at'])} {a['actor']}: {a['action']} {a['detail']}"
              for a in data["actions"]]
    return lines
