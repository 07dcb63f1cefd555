"""What `send`, `retry` and `postpone` print: the plan before sending, the rate beside the
progress bars, and the result after."""

from __future__ import annotations

from rich.progress import ProgressColumn, Task
from rich.table import Table
from rich.text import Text

from dispatcher.cli.app import clock, err, out, slot_text
from dispatcher.ledger import DeliveryState, NoticeRecord
from dispatcher.schedule import notice_capacity, recipients_of
from dispatcher.send import SendResult
from dispatcher.table import Channel, Config, Contact, Notice, jp_datetime


class RateColumn(ProgressColumn):
    """Deliveries finished a second, over the last half minute."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:7,.1f}/s" if speed is not None else "      -/s")


def print_send_plan(notice: Notice, audience: list[Contact], channels: list[Channel],
                     existing: NoticeRecord | None, cfg: Config) -> None:
    window = notice.window
    out.print(f"window {window.number} ({window.id}) {notice.phase.value}, {notice.slot.name}: "
              f"{slot_text(notice)}", markup=False)
    for estimate in notice_capacity(cfg, notice, recipients_of(audience, channels), clock()):
        lacking = len(audience) - estimate.recipients
        note = f", {lacking} without an address" if lacking else ""
        out.print(f"  {estimate.channel.value}: {estimate.recipients} recipients{note}; "
                  f"{estimate.estimate(cfg.channels[estimate.channel])}", markup=False)
    if existing is not None:
        started = jp_datetime(existing.created_at.astimezone(cfg.settings.timezone))
        out.print(f"  this notice was started on {started} by "
                  f"{existing.triggered_by}: only what is not yet sent will go out", markup=False)


def print_send_result(result: SendResult) -> None:
    if result.already_done:
        out.print("nothing new to send: every delivery of this notice was already final",
                  markup=False)
    record = result.notice
    out.print(f"notice {record.window_id} {record.slot} {record.phase}: {record.state}",
              markup=False)
    table = Table()
    present = {state for _, state in result.counts}
    states = [s.value for s in DeliveryState if s.value in present]
    table.add_column("channel")
    for state in states:
        table.add_column(state, justify="right")
    for channel in sorted({c for c, _ in result.counts}):
        table.add_row(channel, *[str(result.counts.get((channel, s), 0)) for s in states])
    out.print(table)
    for channel, lacking in result.plan.lacking.items():
        if lacking:
            out.print(f"{channel.value}: {len(lacking)} contacts have no address: "
                      f"{', '.join(lacking)}", markup=False)
    for channel, off in result.plan.suppressed.items():
        if off:
            out.print(f"{channel.value}: {len(off)} contacts not sent to, their address is "
                      f"suppressed (`dispatcher suppress list`): {', '.join(off)}",
                      markup=False)
    for failure in result.failures:
        out.print(f"{failure.state}: {failure.channel} {failure.contact_id} {failure.address}: "
                  f"{failure.last_error}", markup=False)
    for channel, error in result.stopped.items():
        waiting = result.counts.get((channel.value, DeliveryState.PENDING.value), 0)
        err.print(f"error: {channel.value} stopped: {error}. {waiting:,} deliveries are still "
                  "pending; correct the login it uses (the environment variables named in "
                  "its [channels] table) and send again: nothing sent goes twice",
                  markup=False)
