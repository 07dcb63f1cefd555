"""What the commands show, built from validated inputs. Pure: the CLI does the printing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from dispatcher.ledger import (
    DeliveryRecord,
    NoticeFailure,
    NoticeRecord,
    NoticeState,
    OutageRecord,
    failing,
)
from dispatcher.render import missing_bold_face
from dispatcher.schedule import next_notice
from dispatcher.table import (
    Channel,
    Config,
    Contact,
    NextNotice,
    SetAside,
    Slot,
    Window,
    Work,
    WorkReports,
    active_slot,
    in_audience,
    jp_datetime,
    jp_range,
    lead_text,
    notice_key,
    notice_tags,
    phase_tag,
    spoken_duration,
    work_of,
)


@dataclass(frozen=True)
class WindowView:
    """One window as `dispatcher windows` shows it at a given moment."""

    window: Window
    active: Slot
    next: NextNotice | None
    notices: Mapping[str, str] = field(default_factory=dict)
    work: Work | None = None  # the active slot's, as reported
    now: datetime | None = None
    failing: tuple[str, ...] = ()  # the active slot's notices the daemon could not send

    def to_json(self) -> dict[str, Any]:
        w = self.window
        return {
            "number": w.number,
            "id": w.id,
            "title": w.title,
            "notify": w.notify.value,
            "channels": [c.value for c in w.channels],
            "audience": list(w.audience),
            "active_slot": self.active.name,
            "end_notice": w.end_notice.value,
            "slots": [
                {"name": s.name, "start": s.start, "end": self._end(s)}
                for s in w.slots
            ],
            "work": self._work_json(),
            "next_notice": _next_json(self.next),
            "notices": dict(self.notices),
            "failing": list(self.failing),
        }

    def _end(self, slot: Slot) -> datetime:
        """A slot's end: the active one's as reported (extended, or when it ended)."""
        return self.work.end if self.work is not None and slot == self.active else slot.end

    def _work_json(self) -> dict[str, Any] | None:
        if self.work is None or self.now is None:
            return None
        shown = work_json(self.work, self.now)
        return {k: shown[k] for k in ("state", "end", "extensions", "updates", "ended_at")}

    def notices_text(self) -> str:
        """``start done, end -``: the ledger's state of the active slot's notices, and
        each the daemon could not send (``start NOT SENT``, `status` says why)."""
        if not self.window.broadcast:
            return "-"
        shown = [f"{p} {self.notices.get(p, '-')}" for p in ("start", "end")
                 if p not in self.failing]
        return ", ".join([*(f"{tag} NOT SENT" for tag in self.failing), *shown])


def work_json(work: Work, now: datetime) -> dict[str, Any]:
    """The work of a slot at ``now``: its state, its end in force, and every report."""
    return {
        "slot": work.slot.name, "state": work.state(now).value, "end": work.end,
        "extensions": len(work.extensions), "updates": len(work.updates),
        "ended_at": work.ended_at,
        "reports": [{"phase": r.tag, "at": r.at, "until": r.until, "text": r.text,
                     "actor": r.actor}
                    for r in sorted((*work.extensions, *work.updates,
                                     *((work.done,) if work.done else ())), key=lambda r: r.at)],
    }


def work_text(work: Mapping[str, Any], tz: tzinfo) -> str:
    """``work (planned): extended, ends 2021年7月19日(月) AM2:30``, and each report."""
    end = jp_datetime(work["end"].astimezone(tz))
    lines = [f"work ({work['slot']}): {work['state']}, "
             f"{'ended' if work['ended_at'] else 'ends'} {end}"]
    for made in work["reports"]:
        at = jp_datetime(made["at"].astimezone(tz))
        lines.append(f"  {made['phase']} by {made['actor']} at {at}"
                     + (f": {made['text']}" if made["text"] else ""))
    return "\n".join(lines)


def window_views(
    windows: Sequence[Window], active_slots: Mapping[str, str], now: datetime,
    notice_states: Mapping[str, NoticeState] | None = None,
    reports: WorkReports | None = None, overrun_after: timedelta = timedelta(minutes=10),
    failures: Mapping[str, NoticeFailure] | None = None,
) -> list[WindowView]:
    """Each window's active slot, its work, its next notice and (from the ledger) its
    notices' states, and those the daemon could not send."""
    views = []
    states = notice_states or {}
    for window in windows:
        slot = active_slot(window, active_slots)
        work = work_of(window, slot, reports)
        mine = {tag: states[key] for tag in notice_tags(window, work)
                if (key := notice_key(window.id, slot.name, tag)) in states}
        coming = next_notice(window, slot, now, work, overrun_after, states)
        stuck = tuple(f.phase for f in failing(failures or {}, states, active_slots).values()
                      if (f.window_id, f.slot) == (window.id, slot.name))
        views.append(WindowView(window, slot, coming, mine, work, now, stuck))
    return views


def slot_range(slot: Slot, tz: tzinfo, with_name: bool = False) -> str:
    text = jp_range(slot.start.astimezone(tz), slot.end.astimezone(tz))
    return f"{slot.name}: {text}" if with_name else text


def next_notice_text(notice: NextNotice | None, tz: tzinfo) -> str:
    if notice is None:
        return "-"
    return f"{phase_tag(notice.phase, notice.lead)} {jp_datetime(notice.at.astimezone(tz))}"


def _next_json(notice: NextNotice | None) -> dict[str, Any] | None:
    if notice is None:
        return None
    shown: dict[str, Any] = {"phase": notice.phase.value, "at": notice.at}
    if notice.lead is not None:
        shown["lead"] = lead_text(notice.lead)
    return shown


@dataclass(frozen=True)
class ChannelReach:
    """How many of a window's audience can be reached on one channel."""

    channel: Channel
    reachable: int
    missing: tuple[str, ...]


@dataclass(frozen=True)
class BroadcastReach:
    window: Window
    audience: int
    channels: tuple[ChannelReach, ...]
    set_aside: int = 0  # rows of its audience set aside as invalid: not sent to


@dataclass(frozen=True)
class CheckSummary:
    config: Config
    contacts: tuple[Contact, ...]
    broadcasts: tuple[BroadcastReach, ...]
    warnings: tuple[str, ...] = field(default=())
    set_aside: tuple[SetAside, ...] = ()

    def lines(self) -> list[str]:
        windows = self.config.windows
        lines = [
            f"windows: {len(windows)} ({len(self.broadcasts)} broadcast)",
            f"contacts: {len(self.contacts)}; with an address per channel: "
            + ", ".join(f"{c.value} {sum(1 for k in self.contacts if k.address(c))}"
                        for c in Channel)
            + (f"; set aside as invalid: {len(self.set_aside)}" if self.set_aside else ""),
        ]
        extra = sorted({name for c in self.contacts for name, _ in c.extra_fields})
        if extra:
            lines.append(f"extra columns, for the templates as contact.extra.NAME: "
                         f"{', '.join(extra)}")
        for reach in self.broadcasts:
            w = reach.window
            aside = f" ({reach.set_aside} more set aside as invalid, not sent to)" \
                if reach.set_aside else ""
            lines.append(f"window {w.number} ({w.id}): {reach.audience} contacts in the "
                         f"audience{aside}")
            for ch in reach.channels:
                lacking = f", {len(ch.missing)} without an address" if ch.missing else ""
                lines.append(f"  {ch.channel.value}: {ch.reachable} recipients{lacking}")
        return lines


def summarise(config: Config, contacts: tuple[Contact, ...],
              set_aside: tuple[SetAside, ...] = ()) -> CheckSummary:
    """Counts of windows and of who each broadcast window reaches on each channel, and of
    the rows set aside (each a warning)."""
    broadcasts = []
    warnings = []
    for window in config.windows:
        if not window.broadcast:
            continue
        audience = in_audience(contacts, window.audience)
        reach = tuple(
            ChannelReach(channel, sum(1 for c in audience if c.address(channel)),
                         tuple(c.id for c in audience if not c.address(channel)))
            for channel in window.channels
        )
        wanted = set(window.audience)
        aside = sum(1 for row in set_aside if not wanted or row.tags & wanted)
        broadcasts.append(BroadcastReach(window, len(audience), reach, aside))
    if any(Channel.FAX in w.channels for w in config.windows if w.broadcast) and (
            font := missing_bold_face()):
        warnings.append(font)
    if config.publish.path is not None and config.publish.base_url is None:
        warnings.append("[publish] path is set without base_url: the feed has no "
                        "rel=\"self\" link (feed readers and validators want one) and the "
                        "calendar's events no URL; set base_url to where the files are served")
    warnings += [f"{row.source}: contact row set aside as invalid, not sent to "
                 f"({row.id or 'no id'} {row.merchant}): {row.reason}" for row in set_aside]
    return CheckSummary(config, contacts, tuple(broadcasts), tuple(warnings), set_aside)


def set_aside_json(row: SetAside) -> dict[str, Any]:
    """A contacts row set aside as invalid, as `status --json` and `unreached` show it."""
    return {"row": row.source, "contact": row.id, "merchant": row.merchant,
            "name": row.name, "addresses": dict(row.typed), "reason": row.reason}


def set_aside_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The rows of a window's audience set aside as invalid: nobody tells those merchants
    anything until the row is corrected, so the help desk may phone them."""
    if not rows:
        return []
    lines = [f"{len(rows):,} contact{'s' if len(rows) > 1 else ''} of its audience set "
             f"aside as invalid, not sent to (as the daemon or a send last read the "
             f"contacts; correct the rows):"]
    for row in rows:
        typed = " ".join(row["addresses"].values())
        lines.append(f"  {row['row']}: {row['contact'] or 'no id'} {row['merchant']}"
                     f"{' ' + typed if typed else ''}: {row['reason']}")
    return lines


def notice_status(record: NoticeRecord, counts: Mapping[tuple[str, str], int],
                  failures: Sequence[DeliveryRecord], outages: Sequence[OutageRecord] = (),
                  waiting: Sequence[tuple[str, str, str, int]] = (), confirmed: int = 0
                  ) -> dict[str, Any]:
    """One notice as `status` shows it: deliveries by channel and state, each failure, each
    provider outage it rode out, what the pending deliveries wait after (a refused login
    stops a channel until it is corrected), and how many contacts confirmed it."""
    channels: dict[str, dict[str, int]] = {}
    for (channel, state), count in sorted(counts.items()):
        channels.setdefault(channel, {})[state] = count
    return {
        "phase": record.phase,
        "slot": record.slot,
        "state": record.state,
        "triggered_by": record.triggered_by,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "channels": channels,
        "total": sum(counts.values()),
        "confirmed": confirmed,
        "failures": [
            {"contact": f.contact_id, "channel": f.channel, "address": f.address,
             "state": f.state, "error_code": f.error_code, "reason": f.last_error,
             "attempts": f.attempts}
            for f in failures
        ],
        "outages": [
            {"channel": o.channel, "began_at": o.began_at, "ended_at": o.ended_at,
             "seconds": round((o.ended_at - o.began_at).total_seconds(), 1),
             "deliveries_waiting": o.waiting, "probes": o.probes, "error": o.error}
            for o in outages
        ],
        "waiting": [{"channel": channel, "error_code": code, "reason": reason, "count": count}
                    for channel, code, reason, count in waiting],
    }


def trouble_lines(troubles: Mapping[str, Sequence[Mapping[str, Any]]], tz: tzinfo
                  ) -> list[str]:
    """``start (planned) NOT SENT since …: why; what to do``, and each operators' alert that
    did not reach its address."""
    lines = []
    for f in troubles["failing"]:
        since = jp_datetime(f["since"].astimezone(tz))
        tries = f"{f['failures']} tries" if f["failures"] > 1 else "1 try"
        lines += [f"{f['phase']} ({f['slot']}): NOT SENT, failing since {since} ({tries}): "
                  f"{f['reason']}", f"  what to do: {f['fix']}"]
    for a in troubles["alerts_not_sent"]:
        at = jp_datetime(a["at"].astimezone(tz))
        lines.append(f"operators' alert not sent: {a['alert']} to {a['channel']} "
                     f"{a['address']} ({at}): {a['error']}")
    return lines


def outage_lines(outages: Sequence[Mapping[str, Any]], tz: tzinfo) -> list[str]:
    """``email: provider unreachable 01:00:03–01:04:13 (4 min 10 s); 1,200 deliveries
    waited; back after 9 probes``."""
    lines = []
    for o in outages:
        began = o["began_at"].astimezone(tz)
        ended = o["ended_at"].astimezone(tz)
        lines.append(f"{o['channel']}: provider unreachable {began:%H:%M:%S}–{ended:%H:%M:%S} "
                     f"({spoken_duration(o['seconds'])}); {o['deliveries_waiting']:,} "
                     f"deliveries waited; back after {o['probes']} probes ({o['error']})")
    return lines
