"""The night board: tonight's windows, one panel each (the work's state, the next notice,
the last notice's progress on each channel with the time left, how many deliveries were
confirmed and how many contacts were not reached, and the report forms), kept live by
server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dispatcher.clock import Clock
from dispatcher.ledger import Ledger, NoticeRecord, NoticeState
from dispatcher.publish import PROGRESS_LABELS, PublishedState
from dispatcher.schedule import next_notice
from dispatcher.table import (
    Inputs,
    Window,
    Work,
    active_slot,
    jp_datetime,
    jp_range,
    notice_key,
    on_tonight,
    phase_tag,
    work_of,
)
from dispatcher.web.auth import Session
from dispatcher.web.gate import html
from dispatcher.web.notices import NoticeDesk
from dispatcher.web.progress import STATE_LABELS, channel_progress, delivered, notice_progress
from dispatcher.web.reports import update_sms_room

BOARD_SECONDS = 1.0
# Who was not reached is read again every this many looks: on 100,000 contacts it reads
# every reached contact, the rest of a panel only counts deliveries.
UNREACHED_EVERY = 10


@dataclass
class NightBoard:
    """Builds the panels, for the page and for its event stream."""

    desk: NoticeDesk
    ledger: Ledger
    clock: Clock
    alive: Callable[[Session], bool] = lambda _: True  # the viewer's session still holds
    # per notice id: (deliveries planned when counted, looks since, the count)
    _unreached: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    async def page(self, context: dict[str, Any]) -> Response:
        """The board, with ``context`` (what every console page shows)."""
        inputs = await self.desk.inputs()
        tonight = await self._tonight(inputs)
        panels = [await self._panel(inputs, window, work) for window, work in tonight]
        rooms = {window.number: await asyncio.to_thread(update_sms_room, inputs,
                                                        self.desk.audience(inputs, window),
                                                        window, work, self.clock())
                 for window, work in tonight if work.done is None}
        windows = {window.number: window for window, _ in tonight}
        return html("night.html.j2", **context, panels=panels, rooms=rooms, windows=windows,
                    grace=f"{inputs.config.receipts.grace_minutes:g}",
                    layout=json.dumps(_layout(panels)))

    async def events(self, request: Request, session: Session) -> Response:
        return StreamingResponse(self.stream(lambda: self.alive(session)),
                                 media_type="text/event-stream")

    async def stream(self, alive: Callable[[], bool] = lambda: True) -> AsyncIterator[str]:
        """Every second, every panel, until the console stops or the viewer's session
        ends (a logout, a new password, a removal: within a second)."""
        stopping = self.desk.stopping
        while not stopping.is_set() and alive():
            panels = await self.panels(await self.desk.inputs())
            yield f"data: {json.dumps({'layout': _layout(panels), 'panels': panels})}\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), BOARD_SECONDS)

    async def panels(self, inputs: Inputs) -> list[dict[str, Any]]:
        return [await self._panel(inputs, window, work)
                for window, work in await self._tonight(inputs)]

    async def _tonight(self, inputs: Inputs) -> list[tuple[Window, Work]]:
        now = self.clock()
        active = await self.ledger.active_slots()
        reports = await self.ledger.work_reports()
        works = [(w, work_of(w, active_slot(w, active), reports)) for w in inputs.config.windows]
        return [(window, work) for window, work in works if on_tonight(work, now)]

    async def _panel(self, inputs: Inputs, window: Window, work: Work) -> dict[str, Any]:
        now = self.clock()
        config = inputs.config
        tz = config.settings.timezone
        slot = work.slot
        records = [r for r in await self.ledger.notices_of(window.id) if r.slot == slot.name]
        coming = next_notice(window, slot, now, work,
                             timedelta(minutes=config.settings.overrun_after_minutes),
                             {notice_key(window.id, r.slot, r.phase): NoticeState(r.state)
                              for r in records})
        last = records[-1] if records else None
        counts = await self.ledger.counts(last.id) if last else {}
        state = work.state(now)
        return {
            "number": window.number, "id": window.id, "title": window.title,
            "slot": slot.name, "broadcast": window.broadcast,
            "time": jp_range(slot.start.astimezone(tz), work.end.astimezone(tz)),
            "state": state.value, "label": PROGRESS_LABELS[PublishedState(state.value)],
            "ended_at": jp_datetime(work.ended_at.astimezone(tz)) if work.ended_at else "",
            "next": (f"{phase_tag(coming.phase, coming.lead)} "
                     f"{jp_datetime(coming.at.astimezone(tz))}") if coming else "",
            "notice": None if last is None else {
                "tag": last.phase, "state": STATE_LABELS.get(last.state, last.state),
                "channels": channel_progress(counts, config),
                **notice_progress(counts, config),
                "delivered": delivered(counts),
                "confirmed": await self.ledger.confirmed_count(
                    (await self.ledger.base_of(last)).id),
                "unreached": await self._unreached_count(inputs, window, last,
                                                         sum(counts.values())),
            },
            "open": work.done is None, "seen_end": work.end.isoformat(),
            "updates": len(work.updates),
        }

    async def _unreached_count(self, inputs: Inputs, window: Window, record: NoticeRecord,
                               planned: int) -> int:
        counted, looks, number = self._unreached.get(record.id, (-1, 0, 0))
        if counted != planned or looks >= UNREACHED_EVERY:
            counted, looks, number = planned, 0, await self.desk.unreached_total(
                inputs, window, record, planned)
        self._unreached[record.id] = (counted, looks + 1, number)
        return number


def _layout(panels: list[dict[str, Any]]) -> list[str]:
    """What the page's forms were made from: the panels' windows, and for each the slot, the
    end in force and the updates the forms carry back. Another means the page is out of
    date (its forms would be refused as stale): the page says so."""
    return [f"{p['number']}|{p['slot']}|{p['seen_end']}|{p['updates']}|{p['open']}"
            for p in panels]
