"""What an operator does by hand (from the command line or the console): send a notice
now, retry its failed deliveries, postpone a window. Each is written to the audit log
with the operator's name; nothing here prints or asks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from dispatcher.clock import Clock, Sleep
from dispatcher.errors import ArgumentError, Problem, StaleError, single
from dispatcher.ledger import (
    BEGUN_STATES,
    Cause,
    DeliveryState,
    Ledger,
    NoticeState,
    Opening,
)
from dispatcher.send.channels import Backend
from dispatcher.send.context import OnProgress
from dispatcher.send.session import SendResult, preflight, send_session
from dispatcher.table import (
    NUMBERED_PHASES,
    PLANNED,
    Channel,
    Inputs,
    Notice,
    Phase,
    Slot,
    Window,
    active_slot,
    build_notice,
    notice_for_tag,
    postponement_target,
    work_of,
)

Counted = Callable[[Mapping[tuple[str, str], int]], None]


@dataclass(frozen=True)
class Postponement:
    """A window's move to a later slot, checked (its postponed notice rendered for every
    contact) but not yet made."""

    window: Window
    current: Slot
    new: Slot
    notice: Notice
    channels: list[Channel]


async def current_notice(ledger: Ledger, window: Window, phase: Phase,
                         lead: timedelta | None = None, seen_slot: str | None = None,
                         number: int | None = None) -> Notice:
    """The notice of ``phase`` for the window's active slot, in its work as reported (an
    extension or an update by its ``number``; the end after `done` naming when the work
    ended); ``seen_slot``, the slot the operator saw, must still be active (StaleError).
    The postponed notice of a window that was moved is the one of the slot it left,
    naming the slot it moved to."""
    slot = active_slot(window, await ledger.active_slots())
    if seen_slot is not None and seen_slot != slot.name:
        raise _stale(window, seen_slot, slot.name)
    if phase is Phase.POSTPONED:
        moves = (await ledger.slot_moves()).get(window.id, {})
        left = next((name for name, to in moves.items() if to == slot.name), None)
        if left is not None:
            return await as_moved(ledger, build_notice(window, window.slot(left), phase, slot))
    work = work_of(window, slot, await ledger.work_reports())
    if phase in NUMBERED_PHASES:
        made = len(work.extensions if phase is Phase.EXTENDED else work.updates)
        if number is None or not 1 <= number <= made:
            raise single(ArgumentError, "--number", f"which {phase.value} notice of window "
                         f"{window.number}? Give --number (it has {made})")
        return notice_for_tag(window, slot, f"{phase.value}-{number}", work)
    if phase in (Phase.REMINDER, Phase.POSTPONED):
        return build_notice(window, slot, phase, lead=lead)
    return notice_for_tag(window, slot, phase.value, work)


async def as_moved(ledger: Ledger, notice: Notice) -> Notice:
    """A postponed notice as its move made it: interrupted (中断) if the work in the slot
    it left had begun (its start notice went or was going out), with the operator's
    reason. Any other notice as it is."""
    if notice.phase is not Phase.POSTPONED:
        return notice
    window, slot = notice.window, notice.slot
    reason = await ledger.move_reason(window.id, slot.name)
    return replace(notice, interrupted=await work_begun(ledger, window, slot),
                   reason=reason or notice.reason)


async def work_begun(ledger: Ledger, window: Window, slot: Slot) -> bool:
    """Whether the work in ``slot`` had begun: its start notice went or is going out (a
    postponement then interrupts it, 中断)."""
    start = await ledger.notice(window.id, slot.name, Phase.START.value)
    return start is not None and start.state in BEGUN_STATES


async def still_current(ledger: Ledger, notice: Notice) -> None:
    """StaleError if the window moved since ``notice`` was built (the operator confirmed a
    view the table has left): a notice goes out only for the slot in force."""
    active = (await ledger.active_slots()).get(notice.window.id, PLANNED)
    allowed = {notice.slot.name}
    if notice.phase is Phase.POSTPONED and notice.new_slot is not None:
        allowed.add(notice.new_slot.name)
    if active not in allowed:
        raise _stale(notice.window, notice.slot.name, active)


def _stale(window: Window, seen: str, active: str) -> StaleError:
    return StaleError([Problem("WINDOW", f"window {window.number} is on {active} now, not "
                                         f"{seen}: the table moved on since; look again")])


async def send_now(inputs: Inputs, ledger: Ledger, backends: Mapping[Channel, Backend],
                   notice: Notice, channels: list[Channel], actor: str, clock: Clock, *,
                   on_counted: Counted | None = None, on_progress: OnProgress | None = None,
                   checked: bool = False, stopping: asyncio.Event | None = None,
                   sleep: Sleep = asyncio.sleep) -> SendResult:
    """Send ``notice`` on ``channels`` now, as ``actor``; ``checked`` as for send_session.
    StaleError if the window moved since the notice was built."""
    await still_current(ledger, notice)
    # audited as the operator acts: the send can run for hours, or fail
    await ledger.audit(actor, "send", notice.window.id,
                       {"phase": notice.tag, "slot": notice.slot.name,
                        "channels": [c.value for c in channels]}, clock())
    return await send_session(inputs, ledger, backends, notice, channels,
                              f"operator:{actor}", clock, on_counted=on_counted,
                              on_progress=on_progress, checked=checked, stopping=stopping,
                              sleep=sleep)


async def requeue_failed(ledger: Ledger, notice: Notice, uncertain: bool, clock: Clock
                         ) -> tuple[int, list[Channel]]:
    """Put the notice's failed (and expired; with ``uncertain``, uncertain) deliveries back
    in the queue; the count, and the channels that have deliveries and are released (the
    others wait for the notice's time). StaleError if the window moved since the notice
    was built."""
    await still_current(ledger, notice)
    record = await ledger.notice(notice.window.id, notice.slot.name, notice.tag)
    if record is None:
        raise single(ArgumentError, "PHASE", f"window {notice.window.number} has no "
                     f"{notice.tag} notice for {notice.slot.name} yet: use send")
    states = [DeliveryState.FAILED.value, DeliveryState.EXPIRED.value,
              *([DeliveryState.UNCERTAIN.value] * uncertain)]
    now = clock()
    requeued = await ledger.requeue(record.id, states, now)
    present = {channel for channel, _ in await ledger.counts(record.id)}
    # a retry sends again what went; a channel waiting for the notice's time still waits
    released = await ledger.released_channels(record.id, now)
    return requeued, [c for c in notice.channels if c.value in present & released]


async def retry_failed(inputs: Inputs, ledger: Ledger, backends: Mapping[Channel, Backend],
                       notice: Notice, channels: list[Channel], requeued: int, actor: str,
                       clock: Clock, *, on_counted: Counted | None = None,
                       on_progress: OnProgress | None = None,
                       stopping: asyncio.Event | None = None,
                       sleep: Sleep = asyncio.sleep) -> SendResult:
    """Send what ``requeue_failed`` put back, as ``actor`` (audited as it starts)."""
    await ledger.audit(actor, "retry", notice.window.id,
                       {"phase": notice.tag, "slot": notice.slot.name, "requeued": requeued},
                       clock())
    return await send_session(inputs, ledger, backends, notice, channels,
                              f"operator:{actor}", clock, on_counted=on_counted,
                              on_progress=on_progress, stopping=stopping, sleep=sleep)


def plan_postponement(inputs: Inputs, window: Window, active_slots: Mapping[str, str],
                      to: str | None, with_notice: bool, clock: Clock,
                      seen_slot: str | None = None, interrupted: bool = False,
                      reason: str = "") -> Postponement:
    """Where ``window`` would move (``to``, or its next reserve slot), with its postponed
    notice rendered for every contact first (TemplateError: nothing is changed): the
    interrupted notice (中断) if the work had begun, naming the operator's ``reason``.
    ``seen_slot``: the slot the operator saw, which must still be active (StaleError)."""
    current = active_slot(window, active_slots)
    if seen_slot is not None and seen_slot != current.name:
        raise _stale(window, seen_slot, current.name)
    new = postponement_target(window, current, to, clock())
    notice = replace(build_notice(window, current, Phase.POSTPONED, new),
                     interrupted=interrupted, reason=reason)
    channels = list(window.channels) if window.broadcast and with_notice else []
    preflight(inputs, notice, channels, clock())
    return Postponement(window, current, new, notice, channels)


async def carry_out_postponement(ledger: Ledger, plan: Postponement, actor: str,
                                 reason: str, clock: Clock) -> dict[str, NoticeState]:
    """Make the move, if the window is still where the plan saw it (StaleError if not),
    and write it to the audit log; the notices' states before it (for whether the work
    was interrupted)."""
    before = await ledger.notice_states()
    window = plan.window
    now = clock()
    notice = plan.notice
    opening = Opening(window.id, notice.slot.name, notice.tag, f"operator:{actor}",
                      {c.value: now for c in plan.channels}, Cause.OPERATOR)
    await ledger.move_window(window.id, plan.current.name, plan.new.name, actor, reason,
                             now, opening if plan.channels else None)
    await ledger.audit(actor, "postpone", window.id,
                       {"from": plan.current.name, "to": plan.new.name, "reason": reason,
                        "notice": bool(plan.channels)}, clock())
    return before
