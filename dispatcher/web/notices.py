"""The console's notice page and its actions: each channel's message for any contact (the
fax page as an image), counts and failures, who was not reached, live progress, and
send now, retry and postpone, each confirmed by typing the window's id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from dispatcher.clock import Clock
from dispatcher.errors import ArgumentError, InputError, Problem, single
from dispatcher.keys import KeyFile
from dispatcher.ledger import (
    NOT_REACHED_STATES,
    DeliveryState,
    Ledger,
    NoticeRecord,
)
from dispatcher.render import Previewer, Renderer, write_png
from dispatcher.schedule import notice_capacity
from dispatcher.send import (
    Backends,
    WorkAction,
    carry_out_postponement,
    carry_out_report,
    check_credentials,
    current_notice,
    make_backends,
    plan_postponement,
    preflight,
    requeue_failed,
    retry_failed,
    send_now,
    send_session,
    work_begun,
)
from dispatcher.table import (
    Channel,
    Config,
    Contact,
    Inputs,
    Notice,
    Phase,
    TableKeeper,
    Window,
    active_slot,
    asks_to_confirm,
    find_window,
    jp_range,
    notice_for_tag,
    work_of,
)
from dispatcher.web.audience import Audience, Audiences
from dispatcher.web.progress import CHANNEL_LABELS, count_table, notice_progress
from dispatcher.web.unreached import UNREACHED_SHOWN, UnreachedReader

log = logging.getLogger("dispatcher.console")
PROGRESS_SECONDS = 1.0


@dataclass
class NoticeDesk:
    """Reads for the notice page, and the sends it starts in the background."""

    config_path: Path
    ledger: Ledger
    clock: Clock
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # set by close(): event streams end, and background sends stop as the daemon's do
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # the daemon's table in force, which the daemon reads again after an edit; None: a
    # keeper of the desk's own, read again here after an edit (the console alone)
    daemon_table: TableKeeper | None = None
    _audiences: Audiences = field(default_factory=Audiences, init=False)

    async def close(self, timeout: float) -> None:
        """Stop: end the event streams, ask the background sends to stop (no new claims;
        what is in flight finishes), and wait for them, at most ``timeout`` seconds."""
        self.stopping.set()
        running = list(self.running.values())
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def __post_init__(self) -> None:
        self._table = self.daemon_table or TableKeeper(self.config_path)
        self._unreached = UnreachedReader(self.ledger)

    async def inputs(self) -> Inputs:
        """The table in force: the daemon's, or the desk's own after reading an edit (in a
        worker thread, off the loop that sends the notices). An edit that is not valid
        leaves the last good table in force (``rejected`` says why)."""
        if self.daemon_table is not None:
            return self.daemon_table.inputs
        return await self._table.refresh()

    @property
    def rejected(self) -> tuple[Problem, ...]:
        """Why the last edit of the table was not taken in; () once one is."""
        return self._table.rejected

    async def notice(self, inputs: Inputs, number: int, tag: str) -> Notice:
        window = find_window(inputs.config.windows, str(number))
        active = active_slot(window, await self.ledger.active_slots())
        notice = notice_for_tag(window, active, tag,
                                work_of(window, active, await self.ledger.work_reports()))
        if notice.phase is Phase.POSTPONED:  # of the slot the window left, if it was moved
            return await current_notice(self.ledger, window, notice.phase)
        return notice

    async def view(self, inputs: Inputs, notice: Notice, contact_id: str | None
                   ) -> dict[str, Any]:
        config = inputs.config
        tz = config.settings.timezone
        audience = self._audiences.of(inputs, notice.window.audience)
        query = (contact_id or "").strip()
        matches = audience.find(query)
        contact = matches[0] if matches else (
            audience.contacts[0] if audience.contacts and not query else None)
        record = await self.ledger.notice(notice.window.id, notice.slot.name, notice.tag)
        counts = await self.ledger.counts(record.id) if record else {}
        waiting = await self.ledger.waiting(record.id) if record else []
        grace = timedelta(minutes=config.receipts.grace_minutes)
        shown, missing_total = await self._unreached.page(
            record, audience, grace, self.clock(), sum(counts.values()),
            asks_to_confirm(notice.window, notice.tag))
        failures = (await self.ledger.deliveries_of(
            record.id, [s.value for s in NOT_REACHED_STATES], limit=UNREACHED_SHOWN)
            if record else [])
        recipients = {c: audience.recipients[c] for c in notice.channels}
        return {
            "notice": notice, "window": notice.window, "tag": notice.tag,
            "slot_text": jp_range(notice.slot.start.astimezone(tz), notice.slot.end.astimezone(tz)),
            "channels": list(notice.channels), "audience_size": len(audience.contacts),
            "contact": contact, "query": query, "matches": matches,
            "previews": self._previews(inputs, notice, contact) if contact else [],
            "counts": count_table(counts), "progress": notice_progress(counts, config),
            "waiting": waiting,
            "estimates": [f"{CHANNEL_LABELS[c.channel.value]}: {c.recipients:,} 件、"
                          f"{c.japanese(config.channels[c.channel])}"
                          for c in notice_capacity(config, notice, recipients, self.clock())],
            "failures": failures,
            "failures_total": sum(n for (_, state), n in counts.items()
                                  if DeliveryState(state) in NOT_REACHED_STATES),
            "unreached": shown, "unreached_total": missing_total,
            "asks": asks_to_confirm(notice.window, notice.tag),
            "suppressed": [replace(e, at=e.at.astimezone(tz))  # the time as read locally
                           for e in await self.ledger.suppressions()
                           if e.address in audience.addresses.get(e.channel, ())],
            "confirmed": await self.ledger.confirmed_count(record.id) if record else 0,
            "sent": record is not None,
            "sending": notice.key in self.running,
            "active_slot": (active := active_slot(notice.window,
                                                  await self.ledger.active_slots())).name,
            # a postponement now interrupts the work (中断) if it has begun
            "interrupts": await work_begun(self.ledger, notice.window, active),
        }

    def fax_png(self, inputs: Inputs, notice: Notice, contact_id: str) -> bytes:
        # not next() with no default: a StopIteration raised in a worker thread never
        # reaches the awaiting request (it answered nothing, for ever)
        contact = next((c for c in inputs.contacts if c.id == contact_id), None)
        if contact is None:
            raise single(ArgumentError, "contact", f"no contact {contact_id!r} in contacts/")
        config = inputs.config
        with tempfile.TemporaryDirectory(prefix="dispatcher-console-") as folder:
            previewer = Previewer(config, Renderer.of(inputs),
                                  Path(folder), self.clock(),
                                  KeyFile(config.receipts.secret_file).keys(), fax_png=write_png)
            preview = previewer.preview(notice, contact, Channel.FAX)
            if preview is None:
                raise single(ArgumentError, "contact", f"{contact_id} has no fax number")
            png = next(f for f in preview.files if f.suffix == ".png")
            return png.read_bytes()

    async def unreached_lines(self, inputs: Inputs, notice: Notice) -> AsyncIterator[str]:
        """Every contact of the audience no delivery reached (none while the notice was
        never sent), as the help desk's CSV, a line at a time."""
        record = await self.ledger.notice(notice.window.id, notice.slot.name, notice.tag)
        audience = self._audiences.of(inputs, notice.window.audience)
        grace = timedelta(minutes=inputs.config.receipts.grace_minutes)
        async for line in self._unreached.csv_lines(record, audience, grace, self.clock(),
                                                    asks_to_confirm(notice.window, notice.tag)):
            yield line

    def audience(self, inputs: Inputs, window: Window) -> Audience:
        return self._audiences.of(inputs, window.audience)

    async def unreached_total(self, inputs: Inputs, window: Window, record: NoticeRecord,
                              planned: int) -> int:
        """How many contacts of ``window``'s audience ``record`` did not reach."""
        grace = timedelta(minutes=inputs.config.receipts.grace_minutes)
        return await self._unreached.count(record, self.audience(inputs, window), grace,
                                           self.clock(), planned,
                                           asks_to_confirm(window, record.phase))

    async def progress_events(self, notice: Notice, alive: Callable[[], bool] = lambda: True
                              ) -> AsyncIterator[str]:
        """Server-sent events: the share of deliveries finished, every second, until the
        notice has no send running and every delivery is final, the console stops, or the
        viewer's session ends."""
        while not self.stopping.is_set() and alive():
            record = await self.ledger.notice(notice.window.id, notice.slot.name, notice.tag)
            counts = await self.ledger.counts(record.id) if record else {}
            progress = notice_progress(counts, (await self.inputs()).config)
            yield f"data: {json.dumps(progress)}\n\n"
            if notice.key not in self.running and progress["total"] and (
                    progress["done"] == progress["total"]):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), PROGRESS_SECONDS)

    # -- the actions --------------------------------------------------------------------

    async def start_send(self, inputs: Inputs, notice: Notice, actor: str) -> None:
        channels = list(notice.channels)
        # every message rendered first, off the loop the daemon's notices share
        await asyncio.to_thread(preflight, inputs, notice, channels, self.clock())
        self._background(notice, inputs.config, channels, lambda backends: send_now(
            inputs, self.ledger, backends, notice, channels, actor, self.clock, checked=True,
            stopping=self.stopping))

    async def start_retry(self, inputs: Inputs, notice: Notice, actor: str) -> int:
        requeued, channels = await requeue_failed(self.ledger, notice, False, self.clock)
        self._background(notice, inputs.config, channels, lambda backends: retry_failed(
            inputs, self.ledger, backends, notice, channels, requeued, actor, self.clock,
            stopping=self.stopping))
        return requeued

    async def postpone(self, inputs: Inputs, window: Window, actor: str, reason: str,
                       seen_slot: str | None) -> None:
        active = await self.ledger.active_slots()
        begun = await work_begun(self.ledger, window, active_slot(window, active))
        plan = await asyncio.to_thread(plan_postponement, inputs, window, active, None, True,
                                       self.clock, seen_slot, begun, reason)
        check_credentials(inputs.config, plan.channels, self.env)  # before the move
        await carry_out_postponement(self.ledger, plan, actor, reason, self.clock)
        if plan.channels:
            self._background(plan.notice, inputs.config, plan.channels, lambda backends: (
                send_now(inputs, self.ledger, backends, plan.notice, plan.channels, actor,
                         self.clock, checked=True, stopping=self.stopping)))

    async def report(self, inputs: Inputs, action: WorkAction) -> None:
        """Record an operator's report of the work, then send its notice in the
        background (a credential it needs is checked before anything is recorded)."""
        check_credentials(inputs.config, action.channels, self.env)
        await carry_out_report(self.ledger, action, self.clock)
        if action.channels:
            self._background(action.notice, inputs.config, action.channels, lambda b: (
                send_session(inputs, self.ledger, b, action.notice, action.channels,
                             f"operator:{action.report.actor}", self.clock, checked=True,
                             stopping=self.stopping)))

    def _background(self, notice: Notice, config: Config, channels: list[Channel],
                    send: Callable[[Backends], Awaitable[object]]) -> None:
        """``send`` in a task of its own, through backends that task makes and closes;
        SetupError now if a credential they need is missing."""
        check_credentials(config, channels, self.env)
        if self.stopping.is_set():
            raise single(ArgumentError, "send", "the console is stopping")
        if notice.key in self.running:
            raise single(ArgumentError, "send", f"the {notice.tag} notice is being sent now")
        task = asyncio.create_task(self._logged(notice, config, channels, send),
                                   name=f"console {notice.key}")
        self.running[notice.key] = task
        task.add_done_callback(lambda _: self.running.pop(notice.key, None))

    async def _logged(self, notice: Notice, config: Config, channels: list[Channel],
                      send: Callable[[Backends], Awaitable[object]]) -> None:
        try:
            async with make_backends(config, channels, self.env) as backends:
                await send(backends)
        except InputError as exc:
            log.error("console send of %s refused: %s", notice.key, exc)
        except Exception:
            log.exception("console send of %s failed", notice.key)

    def _previews(self, inputs: Inputs, notice: Notice, contact: Contact
                  ) -> list[dict[str, Any]]:
        renderer = Renderer.of(inputs)
        shown: list[dict[str, Any]] = []
        for channel in notice.channels:
            if not contact.address(channel):
                shown.append({"channel": channel.value, "missing": True})
                continue
            message = renderer.render(notice, contact, channel, self.clock())
            shown.append({"channel": channel.value, "missing": False, "message": message,
                          "segments": message.segments})
        return shown
