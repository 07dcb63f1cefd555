"""The operators' alerts (``[alerts]``): when a work overruns its confirmed end (the
table's, then each extension's), each address is told once, through the e-mail and SMS
channels' own backends. At most once: an address is claimed in the ledger before its
message goes, and a failure is logged and recorded, not retried (`status`, the console's
banner and /metrics show it)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from dispatcher.errors import ChannelError
from dispatcher.ledger import Ledger
from dispatcher.logs import event
from dispatcher.render import Message, count_segments
from dispatcher.send.channels import Backend, Outgoing
from dispatcher.table import Channel, Config, Contact, Overrun, jp_clock, jp_datetime

log = logging.getLogger("dispatcher.alerts")
ALERT_CHANNELS = (Channel.EMAIL, Channel.SMS)


@dataclass(frozen=True)
class Alert:
    """One alert to every ``[alerts]`` address: ``key`` names it once (in the ledger and
    the outbox)."""

    key: str
    subject: str
    body: str  # the e-mail's
    short: str  # the SMS's


def overrun_alert(config: Config, overrun: Overrun, told_before: bool = False) -> Alert:
    """The alert of an overrun: the end it was due at, what the merchants are told (their
    overrun notice goes once: ``told_before``, at an earlier overrun), and what to do."""
    window, n = overrun.window, overrun.window.number
    due = overrun.due_end.astimezone(config.settings.timezone)
    extended = overrun.extensions > 0
    end = f"延長後の終了予定 {jp_datetime(due)}" if extended else f"終了予定 {jp_datetime(due)}"
    merchants, told = "", ""
    if window.broadcast and not told_before:
        merchants = ("加盟店様には作業延長のお知らせを送信します"
                     f"（送信状況: dispatcher status {n}）。\n")
        told = "加盟店様へ延長のお知らせ送信。"
    elif window.broadcast:
        merchants = ("加盟店様への作業延長のお知らせは最初の超過時に送信済みで、再送はしません。"
                     "新しい終了予定を延長で報告すると、加盟店様に延長のお知らせが届きます。\n")
        told = "加盟店様へ再送なし。"
    return Alert(
        f"alert/{overrun.key}",
        f"【要対応】{'延長後も' if extended else ''}作業延長: #{n} {window.title}",
        f"作業 #{n} {window.title}（{window.id}）は、{end} を過ぎても作業完了の報告が"
        f"ありません。\n{merchants}\n"
        f"作業が終わったら: dispatcher done {n}\n"
        f"延長するなら: dispatcher extend {n} --until 新しい終了予定\n"
        f"（コンソールの「今夜の作業」からも報告できます）\n",
        f"【dispatcher】#{n} {'延長後の' if extended else ''}終了予定{jp_clock(due)}を過ぎても"
        f"作業完了の報告なし。{told}dispatcher done {n} または extend {n}")


async def send_alert(config: Config, ledger: Ledger, backends: Mapping[Channel, Backend],
                     alert: Alert, now: datetime) -> int:
    """Send ``alert`` to each address not claimed before; returns how many went."""
    now = now.astimezone(config.settings.timezone)  # the e-mail's Date, as the notices'
    sent = 0
    started: dict[Channel, str | None] = {}
    for channel, address in config.alerts.addresses():
        claimed = await ledger.claim_alert(alert.key, channel, address, now)
        if claimed is None:
            continue
        if channel not in started:
            started[channel] = await _start(backends[channel])
        error = started[channel] or await _send_one(backends[channel], alert, channel, address,
                                                    claimed, now)
        if started[channel]:
            event(log, logging.ERROR, "operator alert not sent", alert=alert.key,
                  channel=channel.value, address=address, error=error)
        await ledger.finish_alert(claimed, error)
        sent += error is None
    return sent


async def _send_one(backend: Backend, alert: Alert, channel: Channel, address: str,
                    alert_id: int, now: datetime) -> str | None:
    body = alert.body if channel is Channel.EMAIL else alert.short
    operator = Contact("operator", "運用担当", "", None, address if channel is Channel.EMAIL
                       else None, address if channel is Channel.SMS else None,
                       frozenset(), "[alerts]")
    message = Message(operator, channel, address,
                      alert.subject if channel is Channel.EMAIL else None, body,
                      count_segments(body) if channel is Channel.SMS else None)
    digest = hashlib.sha256(f"{alert.key}|{now.isoformat()}".encode()).hexdigest()[:12]
    outgoing = Outgoing(0, alert.key, message, now, 1, f"dispatcher-alert-{alert_id}-{digest}")
    try:
        await backend.send(outgoing)
    except ChannelError as exc:
        event(log, logging.ERROR, "operator alert not sent", alert=alert.key,
              channel=channel.value, address=address, error=str(exc))
        return str(exc) or type(exc).__name__
    event(log, logging.INFO, "operator alert sent", alert=alert.key, channel=channel.value,
          address=address)
    return None


async def _start(backend: Backend) -> str | None:
    """Open the backend; why it could not be opened, or None."""
    try:
        await backend.start()
    except ChannelError as exc:
        return str(exc) or type(exc).__name__
    return None
