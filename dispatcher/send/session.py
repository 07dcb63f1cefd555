"""One notice sent and reported: plan, send what is not final, count."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dispatcher.ledger import (
    FINAL_STATES,
    DeliveryRecord,
    DeliveryState,
    NoticeRecord,
)
from dispatcher.send.dispatcher import Dispatcher, Plan
from dispatcher.table import (
    Channel,
    Notice,
)


@dataclass(frozen=True)
class SendResult:
    """A notice after a send: its plan, deliveries by (channel, state), the failed ones."""

    plan: Plan
    notice: NoticeRecord
    already_done: bool
    counts: Mapping[tuple[str, str], int]
    failures: list[DeliveryRecord]

    @property
    def any_failed(self) -> bool:
        return bool(self.failures)


async def send_notice(
    dispatcher: Dispatcher, notice: Notice, channels: list[Channel], triggered_by: str,
    on_planned: Callable[[Mapping[tuple[str, str], int]], None] | None = None,
) -> SendResult:
    """Plan, then send every delivery of ``notice`` not yet final, and report.

    ``on_planned`` sees the deliveries by (channel, state) before sending starts.
    """
    plan = await dispatcher.plan(notice, channels, triggered_by)
    ledger = dispatcher.ledger
    before = await ledger.counts(plan.record.id)
    if on_planned is not None:
        on_planned(before)
    already_done = all(DeliveryState(state) in FINAL_STATES for _, state in before)
    if not already_done:
        await dispatcher.run(notice, plan.record, channels)
    counts = await ledger.counts(plan.record.id)
    failures = await ledger.deliveries_of(
        plan.record.id, [DeliveryState.FAILED.value, DeliveryState.UNCERTAIN.value])
    final = await ledger.notice(notice.window.id, notice.slot.name, notice.phase.value)
    return SendResult(plan, final or plan.record, already_done, counts, failures)
