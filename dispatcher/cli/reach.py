"""`unreached WINDOW PHASE`: the contacts no channel reached, for the help desk to phone;
`confirm WINDOW PHASE CONTACT`: a merchant who phoned confirmed the notice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    LeadOption,
    PhaseArgument,
    WindowArgument,
    clock,
    lead_of,
    opened_ledger,
    out,
    parse_now,
    print_json,
    run_async,
)
from dispatcher.cli.sending import operator
from dispatcher.errors import ArgumentError, single
from dispatcher.files import PRIVATE_FILE, replace_file
from dispatcher.receipts import (
    HandConfirmation,
    ReachReads,
    Unreached,
    confirm_by_hand,
    gone_from,
    unreached_csv,
)
from dispatcher.render import ConfirmLinks
from dispatcher.table import (
    Channel,
    Inputs,
    Phase,
    SetAside,
    Window,
    active_slot,
    asks_to_confirm,
    build_notice,
    find_window,
    in_audience,
    jp_datetime,
    load_inputs,
    phase_tag,
)


def unreached_contacts(
    window: WindowArgument,
    phase: PhaseArgument,
    lead: LeadOption = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Also write the list to this CSV file (UTF-8 with BOM, for Excel).")
    ] = None,
    as_json: JsonOption = False,
    now: Annotated[str | None, typer.Option(
        help="Judge the grace period at this ISO-8601 moment instead of now.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Every contact of the audience no channel reached, with the numbers to phone."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    moment = parse_now(now, inputs.config.settings.timezone)
    notice = build_notice(target, target.planned, phase, lead=lead_of(lead))
    everyone = as_json or csv_file is not None  # else a terminal shows the first rows
    report = run_async(_report(inputs, target, phase, notice.lead, moment, everyone,
                               notice.channels))
    if csv_file is not None:
        # contact data: owner-only, as the project keeps it everywhere
        replace_file(csv_file, unreached_csv(report["contacts"]).encode("utf-8-sig"),
                     PRIVATE_FILE)
    if as_json:
        print_json(report, inputs.config.settings.timezone)
    else:
        _print(report)


async def _report(inputs: Inputs, window: Window, phase: Phase, lead: timedelta | None,
                  now: datetime, everyone: bool, channels: Iterable[Channel]
                  ) -> dict[str, Any]:
    """The report; with ``everyone`` false, its contacts are only the first ``SHOWN``
    (only theirs and the reached contacts are read: 100,000 contacts read 300,000
    deliveries otherwise). Of a notice that asks to confirm, those who did not confirm."""
    config = inputs.config
    grace = timedelta(minutes=config.receipts.grace_minutes)
    audience = in_audience(inputs.contacts, window.audience)
    tag = phase_tag(phase, lead)
    asks = asks_to_confirm(window, tag)
    found: list[Unreached] = []
    total = confirmed = waiting = 0
    async with opened_ledger(config) as ledger:
        slot = active_slot(window, await ledger.active_slots())
        record = await ledger.notice(window.id, slot.name, tag)
        reads = ReachReads(ledger)
        if record is not None and everyone:
            found = await reads.rows(record, asks, audience, None, grace, now)
            total, waiting = len(found), sum(u.waiting for u in found)
        elif record is not None:
            ids = [c.id for c in audience]
            gone = gone_from(set(ids), await ledger.contacts_named(record.id))
            shown = (await reads.missing(record, asks, ids, gone, now - grace))
            waiting = len(set(shown) & await ledger.contacts_waiting(record.id, now - grace))
            total, shown = len(shown), shown[:SHOWN]
            by_id = {c.id: c for c in audience}
            found = await reads.rows(record, asks, [by_id[i] for i in shown if i in by_id],
                                     shown, grace, now)
        if record is not None:
            confirmed = await ledger.confirmed_count(record.id)
    # rows set aside as invalid were never sent to: first, for the help desk to phone
    valid = {c.id for c in audience}  # a duplicate's id is in the audience already
    invalid = [_set_aside_json(row, channels) for row in inputs.set_aside_in(window.audience)
               if row.id not in valid] if record is not None else []
    return {"window": window.id, "number": window.number, "phase": tag,
            "slot": slot.name, "sent": record is not None,
            "grace_minutes": config.receipts.grace_minutes, "as_of": now,
            "audience": len(audience) + len(invalid), "unreached": total + len(invalid),
            "waiting": waiting, "set_aside": len(invalid),
            "channels": [c.value for c in channels],
            "asks_to_confirm": asks, "confirmed": confirmed,
            "contacts": [*invalid, *(u.to_json() for u in found)]}


def _set_aside_json(row: SetAside, channels: Iterable[Channel]) -> dict[str, Any]:
    """A row set aside as invalid, as an unreached contact: every channel ``invalid``."""
    typed = dict(row.typed)
    phones = [typed[c] for c in ("phone", "sms", "fax") if typed.get(c)]
    return {"contact": row.id, "merchant": row.merchant, "name": row.name,
            "phones": phones, "waiting": False, "set_aside": row.source,
            "channels": {c.value: {"state": "invalid", "address": typed.get(c.value),
                                   "error_code": None, "reason": row.reason}
                         for c in channels},
            "confirmed": False, "reached": False, "steps": []}


_CHANNELS = ("fax", "email", "sms", "voice")
SHOWN = 100  # rows in the terminal (a table of 100,000 took minutes to lay out)


def _print(report: dict[str, Any]) -> None:
    head = f"window {report['number']} ({report['window']}) {report['phase']}"
    if not report["sent"]:
        out.print(f"{head}: not sent yet", markup=False)
        return
    if report["asks_to_confirm"]:
        out.print(f"{head}: {report['unreached']:,} of {report['audience']:,} contacts "
                  f"have not confirmed ({report['confirmed']:,} confirmed)", markup=False)
    else:
        out.print(f"{head}: {report['unreached']:,} of {report['audience']:,} contacts "
                  f"unreached (grace {report['grace_minutes']:g} min)", markup=False)
    if report["set_aside"]:
        out.print(f"  {report['set_aside']:,} of them set aside as invalid in the contacts "
                  "files, never sent to (state invalid): correct their rows", markup=False)
    if report["waiting"]:
        out.print(f"  {report['waiting']:,} of them waiting: sent within the grace period, "
                  "the message may still arrive; phone them once it has passed", markup=False)
    if not report["contacts"]:
        return
    out.print(_table(report), markup=False)
    more = report["unreached"] - min(len(report["contacts"]), SHOWN)
    if more > 0:
        out.print(f"… and {more:,} more: --csv FILE or --json lists them all", markup=False)


def _table(report: dict[str, Any]) -> Table:
    """The first rows, with only the columns that apply to the notice: its channels (and
    the call-out's), whether each was reached and its escalations only where it asks to
    confirm; numbers never cut short (they wrap)."""
    asks = report["asks_to_confirm"]
    used = {c for contact in report["contacts"][:SHOWN] for c in contact["channels"]}
    channels = [c for c in _CHANNELS if c in report["channels"] or c in used]
    table = Table("contact", "merchant", "name", Column("phones", overflow="fold"), "waiting",
                  *channels, *(("reached", "steps") if asks else ()))
    for contact in report["contacts"][:SHOWN]:
        outcomes = contact["channels"]
        row = [contact["contact"], contact["merchant"], contact["name"],
               "\n".join(contact["phones"]) or "-", "yes" if contact["waiting"] else "",
               *(_outcome(outcomes.get(c)) for c in channels)]
        if asks:
            row += ["yes" if contact["reached"] else "no",
                    "\n".join(f"{s['notice']}: {_outcome(s)}" for s in contact["steps"]) or "-"]
        table.add_row(*row)
    return table


def _outcome(outcome: dict[str, Any] | None) -> str:
    if outcome is None:
        return "-"
    code = f" {outcome['error_code']}" if outcome["error_code"] else ""
    return f"{outcome['state']}{code}"


ContactArgument = Annotated[str, typer.Argument(
    metavar="CONTACT", help="The contact's id, or the code printed on its fax (3K7F-2M9Q-X1).")]


def confirm(
    window: WindowArgument,
    phase: PhaseArgument,
    contact: ContactArgument,
    lead: LeadOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Record that a merchant confirmed a notice (they phoned the help desk); audited."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    notice = build_notice(target, target.planned, phase, lead=lead_of(lead))
    done = run_async(_confirm(inputs, target, phase_tag(phase, notice.lead), contact))
    tz = inputs.config.settings.timezone
    standing = done.standing
    if as_json:
        print_json({"notice": done.notice_key, "contact": done.contact_id, "new": done.new,
                    "via": standing.via, "by": standing.actor,
                    "at": standing.at}, tz)
        return
    when = jp_datetime(standing.at.astimezone(tz))
    if done.new:
        out.print(f"{done.contact_id}: confirmed {done.notice_key} ({when})", markup=False)
    else:
        out.print(f"{done.contact_id}: had already confirmed {done.notice_key} ({when}, by "
                  f"{standing.via} {standing.actor}); nothing changed", markup=False)


async def _confirm(inputs: Inputs, window: Window, tag: str, who: str) -> HandConfirmation:
    async with opened_ledger(inputs.config) as ledger:
        slot = active_slot(window, await ledger.active_slots())
        record = await ledger.notice(window.id, slot.name, tag)
        if record is None:
            raise single(ArgumentError, "PHASE", f"window {window.number} has no {tag} notice "
                         f"sent in its slot {slot.name}: there is nothing to confirm")
        return await confirm_by_hand(ledger, ConfirmLinks.of(inputs.config), record, who,
                                     operator(), clock())
