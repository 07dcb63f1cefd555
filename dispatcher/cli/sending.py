"""`send`, `retry` and `postpone`: the commands that send, with a safety catch and progress."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dispatcher.cli import report
from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ChannelsOption,
    ConfigOption,
    LeadOption,
    PhaseArgument,
    WindowArgument,
    YesOption,
    clock,
    err,
    lead_of,
    opened_ledger,
    out,
    run_async,
)
from dispatcher.cli.send_output import RateColumn, print_send_plan, print_send_result
from dispatcher.errors import ArgumentError, single
from dispatcher.ledger import FINAL_STATES, DeliveryState, Ledger
from dispatcher.schedule import was_interrupted
from dispatcher.send import (
    Backend,
    SendResult,
    carry_out_postponement,
    check_credentials,
    current_notice,
    make_backends,
    plan_postponement,
    preflight,
    requeue_failed,
    retry_failed,
    send_now,
    send_session,
    work_begun,
)
from dispatcher.table import (
    SET_ASIDE_SHOWN,
    Channel,
    Inputs,
    Notice,
    Phase,
    SetAside,
    Window,
    active_slot,
    find_window,
    load_inputs,
)

NumberOption = Annotated[int | None, typer.Option(
    "--number", help="Which extended or update notice (1 for extended-1, update-1).")]
SlotOption = Annotated[str | None, typer.Option(
    "--slot", help="The slot you saw the window on (planned, or a reserve slot's id): refused "
                   "if the window has moved since.")]


def send(
    window: WindowArgument,
    phase: PhaseArgument,
    lead: LeadOption = None,
    number: NumberOption = None,
    channel: ChannelsOption = None,
    slot: SlotOption = None,
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
    code = run_async(_send(inputs, target, (phase, lead_of(lead), number), channel, dry_run,
                           yes, slot))
    raise typer.Exit(code)


def retry(
    window: WindowArgument,
    phase: PhaseArgument,
    lead: LeadOption = None,
    number: NumberOption = None,
    uncertain: Annotated[bool, typer.Option(
        help="Also re-send deliveries whose outcome is uncertain (may duplicate).")] = False,
    slot: SlotOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Re-attempt the failed deliveries of a notice."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    code = run_async(_retry(inputs, target, (phase, lead_of(lead), number), uncertain, slot))
    raise typer.Exit(code)


def postpone(
    window: WindowArgument,
    to: Annotated[str | None, typer.Option(
        help="The slot to move to (a reserve slot's id, e.g. reserve-2021-08-23-0100); "
             "default: the next one.")] = None,
    reason: Annotated[str, typer.Option(
        help="Why, in words the merchants read: printed in the postponed or interrupted "
             "notice (「前提作業の遅延のため、…」) and kept in the audit log.")] = "",
    no_notice: Annotated[bool, typer.Option(
        "--no-notice", help="Do not send the postponed notice.")] = False,
    no_move: Annotated[bool, typer.Option(
        "--no-move", help="The work was stopped (中断) but no new date is chosen yet: the "
                          "window stays on its slot, the interrupted notice says the date "
                          "will follow; postpone again once it is chosen.")] = False,
    from_slot: Annotated[str | None, typer.Option(
        "--from", help="The slot you saw the window on: refused if it has moved since.")
    ] = None,
    yes: YesOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Move a window to a reserve slot (予備日); a broadcast window sends a postponed notice."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    if no_move:
        if to is not None:
            raise single(ArgumentError, "--no-move", "--no-move keeps the window where it "
                         "is: it cannot go with --to")
        from dispatcher.cli.work import interrupt_in_place  # it uses this module's helpers
        raise typer.Exit(interrupt_in_place(inputs, target, reason, not no_notice, yes))
    raise typer.Exit(run_async(_postpone(inputs, target, to, reason, no_notice, yes,
                                         from_slot)))


async def _postpone(inputs: Inputs, window: Window, to: str | None, reason: str,
                    no_notice: bool, yes: bool, from_slot: str | None) -> int:
    cfg = inputs.config
    tz = cfg.settings.timezone
    async with opened_ledger(cfg) as ledger:
        active = await ledger.active_slots()
        begun = await work_begun(ledger, window, active_slot(window, active))
        plan = plan_postponement(inputs, window, active, to, not no_notice, clock, from_slot,
                                 begun, reason)
        current, new = plan.current, plan.new
        check_credentials(cfg, plan.channels, os.environ)
        out.print(f"window {window.number} ({window.id}): {current.name} "
                  f"{report.slot_range(current, tz)} → {new.name} {report.slot_range(new, tz)}",
                  markup=False)
        told = ("the interrupted notice (中断: stopped, why, service back now, the reserve "
                "date)" if plan.notice.interrupted else "the postponed notice")
        if not yes and not confirmed_action(f"Move window {window.number} to {new.name}"
                                             + (f" and send {told}" * bool(plan.channels))):
            err.print("cancelled: nothing was changed", markup=False)
            return 1
        before = await carry_out_postponement(ledger, plan, operator(), reason, clock)
        if was_interrupted(before, window, current):
            out.print(f"the work in {current.name} was interrupted (中断): its end notice will "
                      f"not be sent; {new.name} gets its own start and end notices", markup=False)
        if not plan.channels:
            return 0
        result = await send_with_progress(inputs, ledger, plan.notice, plan.channels,
                                           checked=True, audited=False)
    print_send_result(result)
    return 1 if result.any_failed else 0


def _send_channels(notice: Notice, only: list[Channel] | None) -> list[Channel]:
    if not only:
        return list(notice.channels)
    unknown = [c.value for c in only if c not in notice.channels]
    if unknown:
        raise single(ArgumentError, "--channel", f"the {notice.tag} notice of window "
                     f"{notice.window.number} does not go out on {', '.join(unknown)} "
                     f"(its channels: {', '.join(notice.channels)})")
    return list(dict.fromkeys(only))


# a notice as the command line names it: its phase, a reminder's lead, a report's number
NoticeName = tuple[Phase, timedelta | None, int | None]


async def _send(inputs: Inputs, window: Window, name: NoticeName,
                only: list[Channel] | None, dry_run: bool, yes: bool, seen_slot: str | None
                ) -> int:
    cfg = inputs.config
    phase, lead, number = name
    async with opened_ledger(cfg, create=not dry_run) as ledger:
        notice = await current_notice(ledger, window, phase, lead, seen_slot, number)
        slot = notice.slot
        channels = _send_channels(notice, only)
        audience = preflight(inputs, notice, channels, clock())
        existing = await ledger.notice(window.id, slot.name, notice.tag)
        print_send_plan(notice, audience, channels, existing, cfg)
        _warn_of_set_aside(inputs.set_aside_in(window.audience))
        if dry_run:
            out.print("dry run: nothing was sent", markup=False)
            return 0
        check_credentials(cfg, channels, os.environ)
        if not yes and not _confirmed(notice, len(audience)):
            err.print("cancelled: nothing was sent", markup=False)
            return 1
        await ledger.replace_set_aside(inputs.set_aside, clock())  # for status, the console
        result = await send_with_progress(inputs, ledger, notice, channels, checked=True)
    print_send_result(result)
    return 1 if result.any_failed else 0


def _warn_of_set_aside(rows: list[SetAside]) -> None:
    for row in rows[:SET_ASIDE_SHOWN]:
        err.print(f"warning: {row.source}: {row.id or 'no id'} {row.merchant} is set aside "
                  f"as invalid, not sent to: {row.reason}", markup=False, style="yellow")
    if len(rows) > SET_ASIDE_SHOWN:
        err.print(f"warning: … and {len(rows) - SET_ASIDE_SHOWN:,} more rows set aside as "
                  f"invalid (`dispatcher check` names them all)", markup=False, style="yellow")


async def send_with_progress(inputs: Inputs, ledger: Ledger, notice: Notice,
                              channels: list[Channel], checked: bool = False,
                              retry: int | None = None, audited: bool = True) -> SendResult:
    """Send (or, given how many were requeued, ``retry``) through backends made for it, with
    a live progress bar per channel on standard error; ``checked`` as for ``send_session``.
    Not ``audited``: the caller's own audit entry covers it (a postponement's notice)."""
    async with make_backends(inputs.config, channels, os.environ) as backends:
        return await _send_through(inputs, ledger, backends, notice, channels, checked, retry,
                                   audited)


async def _send_through(inputs: Inputs, ledger: Ledger, backends: Mapping[Channel, Backend],
                        notice: Notice, channels: list[Channel], checked: bool,
                        retry: int | None, audited: bool) -> SendResult:
    with Progress(TextColumn("{task.description:<5}"), BarColumn(), MofNCompleteColumn(),
                  RateColumn(), TextColumn("left"), TimeRemainingColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        tasks = {channel: progress.add_task(channel.value, total=None) for channel in channels}

        def counted(counts: Mapping[tuple[str, str], int]) -> None:
            for channel, task in tasks.items():
                mine = {s: n for (c, s), n in counts.items() if c == channel.value}
                done = sum(n for s, n in mine.items() if DeliveryState(s) in FINAL_STATES)
                progress.update(task, total=sum(mine.values()), completed=done)

        def advance(channel: Channel, state: DeliveryState) -> None:
            if state in FINAL_STATES:
                progress.advance(tasks[channel])

        if not audited:
            return await send_session(inputs, ledger, backends, notice, channels,
                                      f"operator:{operator()}", clock, on_counted=counted,
                                      on_progress=advance, checked=checked)
        if retry is not None:
            return await retry_failed(inputs, ledger, backends, notice, channels, retry,
                                      operator(), clock, on_counted=counted,
                                      on_progress=advance)
        return await send_now(inputs, ledger, backends, notice, channels, operator(), clock,
                              on_counted=counted, on_progress=advance, checked=checked)


def _confirmed(notice: Notice, audience: int) -> bool:
    return confirmed_action(f"Send the {notice.phase.value} notice of window "
                             f"{notice.window.number} to {audience} contacts now")


def confirmed_action(question: str) -> bool:
    if not sys.stdin.isatty():
        raise single(ArgumentError, "--yes", "standard input is not a terminal, so there is "
                     "no one to confirm: add --yes")
    return typer.confirm(f"{question}?", default=False)


def operator() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


async def _retry(inputs: Inputs, window: Window, name: NoticeName, uncertain: bool,
                 seen_slot: str | None) -> int:
    cfg = inputs.config
    phase, lead, number = name
    async with opened_ledger(cfg) as ledger:
        notice = await current_notice(ledger, window, phase, lead, seen_slot, number)
        requeued, channels = await requeue_failed(ledger, notice, uncertain, clock)
        out.print(f"{requeued} deliveries to try again", markup=False)
        result = await send_with_progress(inputs, ledger, notice, channels, retry=requeued)
    print_send_result(result)
    return 1 if result.any_failed else 0
