"""The one way a notice is sent, by the daemon, `send`, `retry` and `postpone`: check every
message renders, then the sending run sends what is not final, and report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dispatcher.clock import Clock, Sleep
from dispatcher.errors import Problem, TemplateError
from dispatcher.ledger import (
    FINAL_STATES,
    UNSENT_STATES,
    DeliveryRecord,
    DeliveryState,
    Ledger,
    NoticeRecord,
    NoticeState,
)
from dispatcher.render import Renderer, Shapes, check_notice
from dispatcher.send.channels import Backend
from dispatcher.send.context import OnOutage, OnProgress
from dispatcher.send.run import Plan, SendingRun
from dispatcher.table import (
    Channel,
    Contact,
    Inputs,
    Notice,
    in_audience,
)


class Fix(StrEnum):
    """What an operator can do about a notice the daemon could not send."""

    TABLE = "table"  # a message that cannot be rendered
    RETRY = "retry"  # any other failure: the daemon tries again
    LOGIN = "login"  # a provider refused our login

    @property
    def text(self) -> str:
        return _FIX_TEXT[self][0]

    @property
    def japanese(self) -> str:
        return _FIX_TEXT[self][1]


_FIX_TEXT = {
    Fix.TABLE: ("correct the template or the table (`dispatcher check` names it); the daemon "
                "tries again by itself, or `dispatcher send` sends it now",
                "テンプレートか設定を直してください（dispatcher check が箇所を示します）。"
                "直ればデーモンが自動で送信します。今すぐ送るには dispatcher send。"),
    Fix.RETRY: ("the daemon tries again by itself; the daemon's log has the whole error",
                "デーモンが自動で再試行します。詳しい原因はデーモンのログにあります。"),
    Fix.LOGIN: ("correct the login, then restart the daemon or run `dispatcher send`",
                "送信サービスのログイン情報を直し、デーモンを再起動するか dispatcher send "
                "を実行してください。"),
}


def fix_of(code: str) -> Fix | None:
    """The fix a ledger's failure names (None for one an unknown version wrote)."""
    try:
        return Fix(code)
    except ValueError:
        return None


@dataclass(frozen=True)
class SendResult:
    """A notice after a send: its plan, deliveries by (channel, state), the failed ones."""

    plan: Plan
    notice: NoticeRecord
    already_done: bool
    counts: Mapping[tuple[str, str], int]
    failures: list[DeliveryRecord]
    # channels that stopped because the provider refused the sender (a wrong password)
    stopped: Mapping[Channel, str] = field(default_factory=dict)

    @property
    def any_failed(self) -> bool:
        return bool(self.failures or self.stopped)


async def send_notice(
    sending: SendingRun, notice: Notice, channels: list[Channel], triggered_by: str,
    on_counted: Callable[[Mapping[tuple[str, str], int]], None] | None = None,
    release_at: datetime | None = None,
    release: bool = True,
) -> SendResult:
    """Plan, then send every delivery of ``notice`` not yet final, and report.

    ``on_counted`` sees the deliveries by (channel, state) before sending starts;
    ``release_at``: when ``channels`` may go (by default now); ``release`` False: none
    that was not released before (see ``SendingRun.plan``).
    """
    plan = await sending.plan(notice, channels, triggered_by, release_at, release)
    ledger, patiently = sending.ledger, sending.patience
    record = plan.record
    before = await patiently(lambda: ledger.counts(record.id))
    if on_counted is not None:
        on_counted(before)
    already_done = all(DeliveryState(state) in FINAL_STATES for _, state in before)
    missed = record.state == NoticeState.MISSED  # its time passed meanwhile: none goes
    if already_done and not missed:
        await sending.settle(notice, record)
    elif not missed:
        await sending.run(notice, record, channels)
    counts = await patiently(lambda: ledger.counts(record.id))
    failures = await patiently(lambda: ledger.deliveries_of(
        record.id, [s.value for s in UNSENT_STATES]))
    final = await patiently(lambda: ledger.notice(notice.window.id, notice.slot.name,
                                                  notice.tag))
    return SendResult(plan, final or record, already_done, counts, failures,
                      dict(sending.stopped))


def preflight(inputs: Inputs, notice: Notice, channels: Iterable[Channel], now: datetime
              ) -> list[Contact]:
    """Render every message of the notice once, as if sent ``now``; TemplateError if any
    fails, so nothing is sent. Returns the notice's audience."""
    config = inputs.config
    renderer = Renderer.of(inputs)
    audience = in_audience(inputs.contacts, notice.window.audience)
    shapes = Shapes(audience)
    max_segments = config.messages.sms_max_segments
    problems: list[Problem] = []
    for channel in channels:
        problems.extend(check_notice(renderer, notice, shapes, channel, max_segments, now))
    if problems:
        raise TemplateError(problems)
    return audience


async def send_session(
    inputs: Inputs, ledger: Ledger, backends: Mapping[Channel, Backend], notice: Notice,
    channels: list[Channel], triggered_by: str, clock: Clock, *,
    stopping: asyncio.Event | None = None,
    on_counted: Callable[[Mapping[tuple[str, str], int]], None] | None = None,
    on_progress: OnProgress | None = None,
    checked: bool = False,
    sleep: Sleep = asyncio.sleep,
    on_outage: OnOutage | None = None,
    release_at: datetime | None = None,
    release: bool = True,
) -> SendResult:
    """Send ``notice`` on ``channels`` through ``backends`` (the caller made them, and
    closes them: ``async with make_backends(...)``).
    ``checked``: the caller has just run ``preflight`` on this notice and these channels (to
    fail before asking the operator), so every message is not rendered a second time."""
    sending = SendingRun(inputs, ledger, backends, clock, sleep, on_progress=on_progress,
                         stopping=stopping or asyncio.Event(), on_outage=on_outage)
    try:
        if not checked:  # every message rendered once: minutes at 100,000, off the loop
            await asyncio.to_thread(preflight, inputs, notice, channels, clock())
        return await send_notice(sending, notice, channels, triggered_by, on_counted,
                                 release_at, release)
    finally:
        await sending.close()
