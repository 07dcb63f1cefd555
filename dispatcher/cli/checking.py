"""`check`: the config, the contacts and the templates as read, and the table against
``now``: every notice it will send, with its time, and what only time shows wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from dispatcher.cli import report
from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    out,
    parse_now,
    print_json,
    run_async,
)
from dispatcher.cli.suppress import suppressed_json
from dispatcher.errors import DispatcherError, InputError, Problem
from dispatcher.files import readable_by_others
from dispatcher.ledger import Peek, engine_url, peek
from dispatcher.render import check_inputs, interrupted_warnings
from dispatcher.schedule import Ahead, Finding, at_night, capacities, gone_by, notices_ahead, when
from dispatcher.table import (
    Config,
    Inputs,
    active_slot,
    jp_date,
    load_inputs,
    window_where,
)

NowOption = Annotated[str | None, typer.Option(
    help="Check the table as at this ISO-8601 moment (default: now).")]


def check(as_json: JsonOption = False, now: NowOption = None,
          config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Validate the config, contacts and templates; list every problem (exit 2) or a
    summary with every notice the table will send and when, and a warning for each
    notice a channel cannot deliver in time or that falls at night."""
    inputs = load_inputs(config)
    cfg = inputs.config
    at = parse_now(now, cfg.settings.timezone)
    seen, unread = _ledger_state(cfg)
    ahead = notices_ahead(cfg.windows, seen.active_slots, seen.notice_states, at,
                          timedelta(minutes=cfg.settings.catch_up_minutes), seen.work_reports,
                          timedelta(minutes=cfg.settings.overrun_after_minutes))
    past, unsent = gone_by(cfg.windows, seen.active_slots, seen.notice_states, at,
                           cfg.settings.timezone)
    summary = report.summarise(cfg, inputs.contacts, inputs.set_aside)
    if unread:  # without the ledger, "nothing was sent" is not known: said, not refused
        unsent, past = [*past, *unsent], []
    problems = [*check_inputs(inputs, at), *_findings(cfg, past),
                *_audiences_of_nobody(cfg, summary, seen, at)]
    estimates = capacities(cfg, inputs.contacts)
    late = [w for c in estimates if (w := c.warning(cfg.channels[c.channel]))]
    warnings = [*summary.warnings, *inputs.contact_warnings, *late, *[f.what for f in unsent],
                *[f.what for f in at_night(ahead, cfg.settings.timezone)],
                *_exposed_files(cfg), *unread, *suppressed_warnings(inputs, seen),
                *interrupted_warnings(inputs)]
    if as_json:
        print_json({"problems": [str(p) for p in problems], "warnings": warnings,
                    "capacity": [c.to_json() for c in estimates],
                    "notices": [_ahead_json(a) for a in ahead]}, cfg.settings.timezone)
        if problems:
            raise typer.Exit(2)
        return
    if problems:
        raise InputError(problems)
    out.print(f"ok: {cfg.path}", markup=False)
    for line in [*summary.lines(), *_ahead_lines(ahead, cfg)]:
        out.print(f"  {line}", markup=False)
    for warning in warnings:
        out.print(f"warning: {warning}", markup=False, style="yellow")


def _ledger_state(cfg: Config) -> tuple[Peek, list[str]]:
    """What the ledger says (slots moved, notices sent), or nothing and a warning if it
    cannot be read: the rest of the check still counts."""
    try:
        return run_async(peek(engine_url(cfg.settings.ledger_url, cfg.path.parent))), []
    except DispatcherError as exc:
        return Peek(), [f"the ledger could not be read (postponements, notices sent and "
                        f"suppressed addresses not taken into account): {exc}"]


def _findings(cfg: Config, findings: list[Finding]) -> list[Problem]:
    return [Problem(window_where(cfg, f.window, f.slot, f.key), f.what) for f in findings]


def _audiences_of_nobody(cfg: Config, summary: report.CheckSummary, seen: Peek,
                         at: datetime) -> list[Problem]:
    """A broadcast window still ahead (or under way) whose audience matches no contact:
    its notices would go to nobody."""
    problems = []
    for reach in summary.broadcasts:
        window = reach.window
        if reach.audience or active_slot(window, seen.active_slots).end <= at:
            continue
        aside = f" ({reach.set_aside} set aside as invalid)" if reach.set_aside else ""
        if window.audience:
            key, what = "audience", (f"no valid contact has any of the tags "
                                     f"{', '.join(window.audience)}{aside}")
        else:
            key, what = "notify", f"its audience is everyone, and no contact is valid{aside}"
        problems.append(Problem(window_where(cfg, window, "planned", key), (
            f"window {window.number} ({window.id}) is broadcast but {what}: its notices "
            f"would reach nobody; correct the tags here or the contacts")))
    return problems


def _ahead_lines(ahead: list[Ahead], cfg: Config) -> list[str]:
    if not ahead:
        return ["notices ahead: none"]
    zone = cfg.settings.timezone
    return ["notices ahead:", *(
        f"  {when(a.at, zone)}  window {a.notice.window.number} {a.notice.tag}"
        f" ({a.notice.slot.name}): {', '.join(c.value for c in a.notice.channels)}"
        for a in ahead)]


def _ahead_json(ahead: Ahead) -> dict[str, Any]:
    notice = ahead.notice
    return {"window": notice.window.number, "id": notice.window.id, "slot": notice.slot.name,
            "phase": notice.phase.value, "tag": notice.tag, "at": ahead.at,
            "channels": [c.value for c in notice.channels]}


def suppressed_warnings(inputs: Inputs, seen: Peek) -> list[str]:
    """A warning for each suppressed address a contact still has (it is not sent to)."""
    zone = inputs.config.settings.timezone
    return [f"{e['channel']} {e['address']} of {', '.join(e['contacts'])} is suppressed "
            f"({e['reason']}, since {jp_date(e['at'].astimezone(zone))}): "
            f"it is not sent to; correct the contact, "
            f"or `dispatcher suppress remove {e['address']}`"
            for e in suppressed_json(seen.suppressions, inputs.contacts) if e["contacts"]]


def _exposed_files(cfg: Config) -> list[str]:
    """The ledger (contact data) and the keys, where other users of the machine can read
    them."""
    paths = []
    url = engine_url(cfg.settings.ledger_url, cfg.path.parent)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(url.database or "")
        paths += [database, database.with_name(f"{database.name}-wal"),
                  database.with_name(f"{database.name}-shm")]
    paths.append(cfg.receipts.secret_file)
    if cfg.console is not None:
        paths += [cfg.console.users_file, cfg.console.secret_file]
    return [f"{path} is readable by other users of this machine: chmod 600 {path}"
            for path in readable_by_others(paths)]
