"""`[[windows]]`, one per row of the table, with their reserve slots (予備日), and the
`[reminders]` they inherit."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta, tzinfo
from typing import Any

from dispatcher.table.config.model import DEFAULT_ANNOUNCE_AT, DEFAULT_ANNOUNCE_DAYS
from dispatcher.table.config.reader import Reader
from dispatcher.table.config.values import (
    channel_names,
    days_or_off,
    moment,
    one_of,
    optional_text,
    phase_names,
    text,
    text_list,
    whole_number,
)
from dispatcher.table.leads import parse_lead
from dispatcher.table.tomlpos import TablePath
from dispatcher.table.windows import (
    PLANNED,
    AffectedService,
    Channel,
    EndNotice,
    Notify,
    Phase,
    Slot,
    Step,
    Window,
    reserve_id,
)

_NO_CHANNELS: tuple[Channel, ...] = ()


_NO_TAGS: tuple[str, ...] = ()


_WINDOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


_WINDOW_KEYS = {"number", "id", "title", "start", "end", "impact", "impact_detail", "notify",
                "channels", "audience", "reserve", "announce_days_before", "reminders",
                "end_notice", "confirm", "affected_services"}

Reminders = dict[Channel, tuple[timedelta, ...]]


@dataclass(frozen=True)
class WindowDefaults:
    """What a window takes from the rest of the config unless it says otherwise."""

    announce_days: float = DEFAULT_ANNOUNCE_DAYS
    announce_at: time = DEFAULT_ANNOUNCE_AT
    reminders: Reminders = field(default_factory=dict)
    confirm: tuple[Phase, ...] = ()  # [confirm] phases
    steps: tuple[Step, ...] = ()  # [confirm] steps and callout_after
    services: tuple[AffectedService, ...] = ()  # [[affected_services]]


def read_reminders(r: Reader, data: dict[str, Any], t: TablePath = ("reminders",)
                   ) -> Reminders:
    """``fax = ["72h"]``, ``email = ["24h"]``, ``sms = ["1h"]``: each channel's lead times."""
    r.unknown_keys(data, t, {c.value for c in Channel})
    reminders: Reminders = {}
    for channel in Channel:
        leads = r.optional(data, t, channel.value, _leads)
        if leads is not None:
            reminders[channel] = leads
    return reminders


def _leads(value: Any) -> tuple[timedelta, ...]:
    return tuple(sorted({parse_lead(v) for v in text_list(value)}, reverse=True))


def read_windows(r: Reader, items: list[dict[str, Any]], tz: tzinfo,
                 defaults: WindowDefaults | None = None) -> tuple[Window, ...]:
    if not items:
        r.problem((), "windows", "the table has no windows: add at least one [[windows]]")
        return ()
    defaults = defaults or WindowDefaults()
    indexed = [(i, w) for i, data in enumerate(items)
               if (w := _window(r, data, i, tz, defaults))]
    for attribute in ("number", "id"):
        _report_duplicates(r, indexed, attribute)
    return tuple(w for _, w in indexed)


def _window(r: Reader, data: dict[str, Any], index: int, tz: tzinfo,
            defaults: WindowDefaults) -> Window | None:
    t: TablePath = ("windows", index)
    r.unknown_keys(data, t, _WINDOW_KEYS)
    before = len(r.problems)
    number = r.value(data, t, "number", whole_number(1))
    window_id = r.value(data, t, "id", _window_id)
    title = r.value(data, t, "title", text)
    impact = r.value(data, t, "impact", text)
    detail = r.value(data, t, "impact_detail", optional_text, "")
    notify = r.value(data, t, "notify", one_of(tuple(n.value for n in Notify)))
    end_notice = r.value(data, t, "end_notice", one_of(tuple(e.value for e in EndNotice)),
                         EndNotice.SCHEDULED.value)
    channels = r.value(data, t, "channels", channel_names, _NO_CHANNELS)
    audience = r.value(data, t, "audience", text_list, _NO_TAGS)
    planned = _slot(r, data, t, PLANNED, tz)
    reserves = [_reserve(r, d, (*t, "reserve", i), tz)
                for i, d in enumerate(r.tables(data, t, "reserve"))]
    announce_days = r.value(data, t, "announce_days_before", days_or_off,
                            defaults.announce_days)
    confirm = r.value(data, t, "confirm", phase_names, defaults.confirm)
    services = r.optional(data, t, "affected_services", _services(defaults.services))
    reminders = {**defaults.reminders, **read_reminders(r, r.table(data, t, "reminders"),
                                                 (*t, "reminders"))}
    if notify == Notify.BROADCAST and channels == ():
        r.problem(t, "channels", 'a broadcast window needs at least one channel, '
                                  'e.g. channels = ["fax", "email", "sms"]')
    if planned is not None:
        _check_reserves(r, t, planned, reserves)
    if len(r.problems) > before or planned is None or None in reserves:
        return None
    # Every value below is set: a missing or bad one would have added a problem.
    assert number and window_id and title and impact and notify
    return Window(number, window_id, title, impact, detail or "", Notify(notify),
                  channels or (), audience or (),
                  (planned, *[s for s in reserves if s is not None]),
                  timedelta(days=defaults.announce_days if announce_days is None
                            else announce_days),
                  tuple((c, leads) for c, leads in reminders.items()
                        if c in (channels or ()) and leads),
                  EndNotice(end_notice or EndNotice.SCHEDULED),
                  defaults.confirm if confirm is None else confirm,
                  defaults.steps, services, defaults.announce_at)


def _services(table: tuple[AffectedService, ...]) -> Callable[[Any], tuple[AffectedService, ...]]:
    """A window's ``affected_services``: each the name of one of the table's
    ``[[affected_services]]`` (with its note), or a service of its own (a name, or
    ``{name = "…", note = "…"}``); ``[]``: its work stops none of them."""
    known = {service.name: service for service in table}

    def services(value: Any) -> tuple[AffectedService, ...]:
        if not isinstance(value, list):
            raise ValueError('must be a list, e.g. ["各種電子マネー決済取引", '
                             '{name = "ポイント照会", note = "…"}]')
        found = []
        for item in value:
            if isinstance(item, str):
                found.append(known.get(text(item), AffectedService(text(item), "")))
                continue
            if not isinstance(item, dict) or set(item) - {"name", "note"} or "name" not in item:
                raise ValueError(f"{item!r}: each is a service's name, or "
                                 '{name = "…", note = "…"}')
            found.append(AffectedService(text(item["name"]), optional_text(item.get("note"))
                                         or ""))
        return tuple(found)
    return services


def _window_id(value: Any) -> str:
    window_id = text(value)
    if not _WINDOW_ID.match(window_id):
        raise ValueError(f"{window_id!r} may hold only letters, digits, '.', '_' and '-'")
    if window_id.isdigit():
        raise ValueError(f"{window_id!r} must not be all digits (it would read as a number)")
    return window_id


def _reserve(r: Reader, data: dict[str, Any], t: TablePath, tz: tzinfo) -> Slot | None:
    """A reserve slot, named by its ``id`` or else by its start: a name that no edit of
    another slot changes, which the ledger's notices and moves refer to."""
    r.unknown_keys(data, t, {"id", "start", "end"})
    name = r.optional(data, t, "id", _slot_id)
    slot = _slot(r, data, t, name or "", tz)
    if slot is None or name:
        return slot
    return Slot(reserve_id(slot.start.astimezone(tz)), slot.start, slot.end)


def _slot_id(value: Any) -> str:
    slot_id = _window_id(value)
    if slot_id == PLANNED:
        raise ValueError(f"{slot_id!r} names the planned slot; a reserve slot needs another id")
    return slot_id


def _slot(r: Reader, data: dict[str, Any], t: TablePath, name: str, tz: tzinfo) -> Slot | None:
    start = r.value(data, t, "start", moment(tz))
    end = r.value(data, t, "end", moment(tz))
    if start is None or end is None:
        return None
    if end <= start:
        r.problem(t, "end", f"must be after start ({end:%Y-%m-%d %H:%M} is not after "
                            f"{start:%Y-%m-%d %H:%M})")
        return None
    return Slot(name, start, end)


def _check_reserves(
    r: Reader, t: TablePath, planned: Slot, reserves: list[Slot | None]
) -> None:
    previous = planned
    seen = {planned.name}
    for index, slot in enumerate(reserves):
        if slot is None:
            continue
        where: TablePath = (*t, "reserve", index)
        if slot.name in seen:
            r.problem(where, "id", f"{slot.name!r} names two slots of this window")
        seen.add(slot.name)
        if slot.overlaps(planned):
            r.problem(where, "start", f"{slot.name} overlaps the planned slot "
                                      f"({planned.start:%Y-%m-%d %H:%M}–{planned.end:%H:%M})")
        elif slot.start < previous.end:
            r.problem(where, "start", f"{slot.name} must start after {previous.name} ends "
                                      f"({previous.end:%Y-%m-%d %H:%M}): postponing moves forward")
        previous = slot


def _report_duplicates(
    r: Reader, indexed: list[tuple[int, Window]], attribute: str
) -> None:
    seen: dict[object, int] = {}
    for index, window in indexed:
        value = getattr(window, attribute)
        if value in seen:
            r.problem(("windows", index), attribute,
                      f"{value!r} is already used by windows[{seen[value] + 1}]")
        else:
            seen[value] = index
