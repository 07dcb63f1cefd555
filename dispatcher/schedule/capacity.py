"""Capacity, known before the night: how long each notice takes to reach its audience on
each channel, against how long it stays worth sending. Pure.

A channel delivers ``concurrency`` messages at a time, each taking about
``seconds_per_message`` (a fax: ``[channels.fax] seconds_per_fax``, 50 s end to end on a
line), at most ``rate_per_second``. A notice matters from its time until its deadline
(``RetryPolicy.deadline``: a start notice until the work ends, a reminder until half its
lead, an end notice ``end_notice_hours`` after). The postponed notice is left out: it goes
when an operator postpones, not at a time the table knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatcher.table import (
    Channel,
    ChannelConfig,
    Config,
    Contact,
    Notice,
    Window,
    build_notice,
    in_audience,
    jp_duration,
    notice_times,
    spoken_duration,
)

_ADVICE = {
    Channel.FAX: "more lines, an e-mail-to-fax gateway, or a fax reminder days ahead",
    Channel.EMAIL: "a higher concurrency or rate_per_second",
    Channel.SMS: "a higher concurrency or rate_per_second (and Twilio's limits)",
    Channel.VOICE: "a higher concurrency or rate_per_second (Twilio allows one call a second "
                   "unless raised)",
}


@dataclass(frozen=True)
class Capacity:
    """One notice on one channel: its recipients, how long they take, how long it matters."""

    window: Window
    tag: str
    channel: Channel
    recipients: int
    per_second: float
    relevant_seconds: float

    @property
    def estimated_seconds(self) -> float:
        return self.recipients / self.per_second if self.recipients else 0.0

    @property
    def would_expire(self) -> int:
        """About how many deliveries its deadline would leave unsent."""
        return max(0, self.recipients - int(self.per_second * self.relevant_seconds))

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window.number, "phase": self.tag, "channel": self.channel.value,
                "recipients": self.recipients,
                "estimated_seconds": round(self.estimated_seconds, 1),
                "relevant_seconds": round(self.relevant_seconds, 1),
                "would_expire": self.would_expire}

    def estimate(self, settings: ChannelConfig) -> str:
        """``about 5 min 37 s on 4 lines; the notice matters for 1 h 0 min``."""
        text = (f"about {spoken_duration(self.estimated_seconds)} {self._how(settings)}; the "
                f"notice matters "
                f"for {spoken_duration(self.relevant_seconds)}")
        return text + (f"; about {self.would_expire:,} would expire" if self.would_expire
                       else "")

    def japanese(self, settings: ChannelConfig) -> str:
        """``約5分37秒（4回線）。お知らせの有効時間 1時間0分`` (the console's)."""
        how = (f"{settings.concurrency}回線" if self.channel is Channel.FAX
               else f"毎秒約{self.per_second:,.0f}件")
        text = (f"約{jp_duration(self.estimated_seconds)}（{how}）。お知らせの有効時間 "
                f"{jp_duration(self.relevant_seconds)}")
        return text + (f"。約{self.would_expire:,}件は時間切れになる見込み"
                       if self.would_expire else "")

    def warning(self, settings: ChannelConfig) -> str | None:
        """What `check` says when the notice cannot reach its audience in time."""
        if not self.would_expire:
            return None
        return (f"window {self.window.number} {self.tag}: {self.channel.value}: "
                f"{self.recipients:,} recipients {self._how(settings)} take about "
                f"{spoken_duration(self.estimated_seconds)}; the notice matters for "
                f"{spoken_duration(self.relevant_seconds)}; about {self.would_expire:,} would "
                f"expire (try {_ADVICE[self.channel]})")


    def _how(self, settings: ChannelConfig) -> str:
        return (f"on {settings.concurrency} lines" if self.channel is Channel.FAX
                else f"at about {self.per_second:,.0f} a second")


def per_second(settings: ChannelConfig) -> float:
    """Messages a second the channel delivers, by its configuration."""
    rate = settings.concurrency / settings.seconds_per_message
    return min(rate, settings.rate_per_second) if settings.rate_per_second else rate


def capacities(config: Config, contacts: Iterable[Contact]) -> list[Capacity]:
    """One entry per timed notice and channel of each broadcast window, in its planned
    slot."""
    everyone = tuple(contacts)
    found = []
    for window in config.windows:
        if not window.broadcast:
            continue
        recipients = recipients_of(in_audience(everyone, window.audience), window.channels)
        for due in notice_times(window, window.planned):
            notice = build_notice(window, window.planned, due.phase, lead=due.lead)
            found += notice_capacity(config, notice, recipients, due.at)
    return found


def recipients_of(audience: Iterable[Contact], channels: Iterable[Channel]
                  ) -> dict[Channel, int]:
    """How many of ``audience`` have an address on each of ``channels``."""
    chosen = list(audience)
    return {channel: sum(1 for c in chosen if c.address(channel)) for channel in channels}


def notice_capacity(config: Config, notice: Notice, recipients: Mapping[Channel, int],
                    at: datetime) -> list[Capacity]:
    """``notice`` sent from ``at`` to ``recipients`` on each channel: one entry a channel."""
    deadline = config.retry.deadline(notice, at).at
    relevant = max((deadline - at).total_seconds(), 0.0)
    return [Capacity(notice.window, notice.tag, channel, count,
                     per_second(config.channels[channel]), relevant)
            for channel, count in recipients.items()]
