"""`done`, `extend` and `update`: the operator's reports of the work, each with its notice
(the end, the extended, the update notice) sent at once, with a safety catch and
progress; and `postpone --no-move`, an interruption (中断) with its notice."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import typer

from dispatcher.cli import report
from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ChannelsOption,
    ConfigOption,
    WindowArgument,
    YesOption,
    clock,
    err,
    opened_ledger,
    out,
    parse_later_moment,
    parse_moment,
    run_async,
)
from dispatcher.cli.send_output import print_send_result
from dispatcher.cli.sending import confirmed_action, operator, send_with_progress
from dispatcher.send import (
    WorkAction,
    WorkView,
    carry_out_report,
    check_credentials,
    plan_done,
    plan_extension,
    plan_interruption,
    plan_update,
    work_view,
)
from dispatcher.table import Inputs, Report, Window, find_window, jp_datetime, load_inputs

PlanReport = Callable[[WorkView], WorkAction]  # the report, made from the view just read

WhenOption = Annotated[str | None, typer.Option(
    "--at", help="When the work ended (ISO-8601; without an offset, in [dispatcher] "
                 "timezone); default: now.")]


def done(
    window: WindowArgument,
    at: WhenOption = None,
    yes: YesOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """The work is over (作業完了): send the end notice now."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    ended = parse_moment(at, inputs.config.settings.timezone, "--at") if at else None

    def plan(view: WorkView) -> WorkAction:
        return plan_done(inputs, view, ended, operator(), clock)

    raise typer.Exit(run_async(_report(inputs, target, plan, yes)))


def extend(
    window: WindowArgument,
    until: Annotated[str, typer.Option(
        help="The new end: a time of day (02:30: the next one after the end in force) or "
             "an ISO-8601 date-time (without an offset, in [dispatcher] timezone).")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    yes: YesOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Move the end of the work (延長): send the extended notice, naming the new end."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)
    tz = inputs.config.settings.timezone

    def plan(view: WorkView) -> WorkAction:
        new_end = parse_later_moment(until, view.work.end, tz, "--until")
        return plan_extension(inputs, view, new_end, reason, operator(), clock)

    raise typer.Exit(run_async(_report(inputs, target, plan, yes)))


def update(
    window: WindowArgument,
    text: Annotated[str, typer.Option(help="The update, in the words the contacts read.")],
    channel: ChannelsOption = None,
    yes: YesOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Send a progress report (経過報告) in your words to the window's audience."""
    inputs = load_inputs(config)
    target = find_window(inputs.config.windows, window)

    def plan(view: WorkView) -> WorkAction:
        return plan_update(inputs, view, text, channel, operator(), clock)

    raise typer.Exit(run_async(_report(inputs, target, plan, yes)))


def interrupt_in_place(inputs: Inputs, window: Window, reason: str, with_notice: bool,
                       yes: bool) -> int:
    """`postpone --no-move`: the work stopped now (中断), the window stays on its slot; the
    interrupted notice (no new date yet) goes out unless ``with_notice`` is false."""
    def plan(view: WorkView) -> WorkAction:
        action = plan_interruption(inputs, view, reason, operator(), clock)
        return action if with_notice else replace(action, channels=[])

    return run_async(_report(inputs, window, plan, yes))


async def _report(inputs: Inputs, window: Window, plan: PlanReport, yes: bool) -> int:
    cfg = inputs.config
    async with opened_ledger(cfg) as ledger:
        action = plan(await work_view(ledger, window))
        check_credentials(cfg, action.channels, os.environ)
        out.print(describe(action, inputs), markup=False)
        question = "Record it" + (f" and send the {action.notice.tag} notice now"
                                  if action.channels else "")
        if not yes and not confirmed_action(question):
            err.print("cancelled: nothing was changed", markup=False)
            return 1
        await carry_out_report(ledger, action, clock)
        if not action.channels:
            return 0
        result = await send_with_progress(inputs, ledger, action.notice, action.channels,
                                          checked=True, audited=False)
    print_send_result(result)
    return 1 if result.any_failed else 0


def describe(action: WorkAction, inputs: Inputs) -> str:
    """What is about to be recorded and sent, in one line for the operator."""
    tz = inputs.config.settings.timezone
    made = action.report
    notice = action.notice
    head = f"window {notice.window.number} ({notice.window.id}), {notice.slot.name}"
    if made.kind is Report.DONE:
        assert made.until is not None
        what = f"the work ended at {jp_datetime(made.until.astimezone(tz))}"
    elif made.kind is Report.INTERRUPTED:
        what = (f"the work was stopped (中断) at {jp_datetime(made.at.astimezone(tz))}; the "
                f"window stays on {notice.slot.name}, its end notice is not sent; "
                f"`dispatcher postpone {notice.window.number}` once a new date is chosen")
    elif made.kind is Report.EXTENDED:
        what = f"the work now ends at {report.slot_range(notice.slot, tz)}"
    else:
        what = f"update {made.number}: {made.text}"
    if not action.channels:
        return f"{head}: {what} (not broadcast: no notice)"
    return (f"{head}: {what}; the {notice.tag} notice goes out on "
            f"{', '.join(c.value for c in action.channels)}")
