"""How far a notice's sending is, from its deliveries counted by (channel, state): the
notice page's bar and the night board's rows, one per channel. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatcher.ledger import FINAL_STATES, DeliveryState
from dispatcher.schedule import per_second
from dispatcher.table import Channel, Config, jp_duration

Counts = Mapping[tuple[str, str], int]  # deliveries by (channel, state)


# What the console calls the channels and the states, for the operators
CHANNEL_LABELS = {"fax": "FAX", "email": "メール", "sms": "SMS", "voice": "電話"}
STATE_LABELS = {"pending": "送信待ち", "sending": "送信中", "submitted": "送信依頼済み",
                "sent": "送信済み",
                "delivered": "配達済み", "failed": "失敗", "uncertain": "不明",
                "expired": "時間切れ", "undelivered": "不達", "bounced": "不達（返送）",
                "done": "完了", "partial": "一部送信", "missed": "時間切れで未送信"}


def count_table(counts: Counts) -> dict[str, dict[str, int]]:
    """The counts by channel, then state."""
    table: dict[str, dict[str, int]] = {}
    for (channel, state), number in sorted(counts.items()):
        table.setdefault(channel, {})[state] = number
    return table


def notice_progress(counts: Counts, config: Config) -> dict[str, Any]:
    """Finished of all, and the time left as the channels' pace estimates it (they send
    side by side: the slowest one's)."""
    total = sum(counts.values())
    done = sum(n for (_, s), n in counts.items() if DeliveryState(s) in FINAL_STATES)
    left: dict[str, int] = {}
    for (channel, state), number in counts.items():
        if DeliveryState(state) not in FINAL_STATES:
            left[channel] = left.get(channel, 0) + number
    seconds = max((n / per_second(config.channels[Channel(c)]) for c, n in left.items()),
                  default=0.0)
    return {"done": done, "total": total, "percent": (100 * done // total) if total else 0,
            "left": f"残り約 {jp_duration(seconds)}" if left else ""}


def channel_progress(counts: Counts, config: Config) -> list[dict[str, Any]]:
    """The progress of each channel the notice has deliveries on, in the channels' order."""
    channels = [c for c in Channel if any(channel == c.value for channel, _ in counts)]
    return [{"channel": c.value, "label": CHANNEL_LABELS[c.value],
             **notice_progress({k: n for k, n in counts.items() if k[0] == c.value}, config)}
            for c in channels]


def delivered(counts: Counts) -> int:
    """Deliveries the provider reported arrived (a fax sent, an SMS on the handset, a DSN)."""
    return sum(n for (_, s), n in counts.items() if s == DeliveryState.DELIVERED.value)
