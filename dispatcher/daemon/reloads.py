"""Edits to the table, read while the notices go on: in a worker thread, held a few seconds
while a notice is due, and in force only once whole, valid and agreeing with the ledger."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dispatcher import logs
from dispatcher.clock import Clock
from dispatcher.daemon.tables import agrees_with_ledger, record_set_aside, warn_of_set_aside
from dispatcher.errors import InputError
from dispatcher.ledger import Ledger
from dispatcher.logs import event
from dispatcher.table import Fingerprint, Inputs, TableKeeper

log = logging.getLogger("dispatcher.daemon")
# An edit is never held longer than this (see Reloads.holding)
RELOAD_HOLD_MAX_SECONDS = 60.0
# How long a look waits for the reload it starts before deciding from the table in force
RELOAD_WAIT_SECONDS = 1.0


@dataclass
class Reloads:
    """The daemon's reading of edits: ``read`` reads the files (blocking: it runs in a
    worker thread), ``due`` gives the times of the jobs waiting and ``planning`` whether a
    notice is planning its deliveries now."""

    table: TableKeeper
    clock: Clock
    read: Callable[[], Inputs]
    due: Callable[[], Collection[datetime]]
    planning: Callable[[], bool]
    # how each reload ended: its seconds and whether the edit was taken (for the metrics)
    on_reloaded: Callable[[float, bool], None] = lambda seconds, taken: None
    _reloading: asyncio.Task[None] | None = field(default=None, init=False)
    _held_since: datetime | None = field(default=None, init=False)

    async def if_changed(self, ledger: Ledger) -> None:
        """Start reading an edit in a worker thread (100,000 contacts take minutes: the
        notices do not wait); the last good table stays in force until it is whole and
        valid."""
        reloading = self._reloading
        if reloading is not None:
            if not reloading.done():
                return
            self._reloading = None
            reloading.result()  # what went wrong (the ledger away, say) is the tick's
        files = self.table.edit_seen()
        if files is not None and not self.holding():
            self._reloading = asyncio.create_task(self._reload(ledger, files), name="reload")
            # a small table is read in milliseconds: in force for this very look
            await asyncio.wait([self._reloading], timeout=RELOAD_WAIT_SECONDS)

    def holding(self) -> bool:
        """Whether an edit waits a few seconds: while a notice is planning its deliveries,
        or is due before a reload (twice as long as the last load) could end. Reading
        100,000 contacts would compete with that notice for the interpreter and would not
        be in force in time anyway: the notice goes out from the table in force at its
        time. A small table reloads in milliseconds and is never held."""
        now = self.clock()
        soon = now + timedelta(seconds=2 * self.table.load_seconds)
        due = self.due()
        # a job whose time passed while the edit was held has not fired yet: still held (an
        # edit first seen after a notice's time is read at once, as the notice starts)
        busy = (self.planning() or any(now <= at <= soon for at in due)
                or (self._held_since is not None and any(at < now for at in due)))
        if not busy:
            self._held_since = None
            return False
        if self._held_since is None:
            self._held_since = now
        return (now - self._held_since).total_seconds() < RELOAD_HOLD_MAX_SECONDS

    async def wait(self) -> None:
        """Until the reload under way, if any, has ended (for tests and the demo)."""
        if self._reloading is not None:
            await asyncio.wait([self._reloading])

    async def cancel(self) -> None:
        """Stop waiting for the reload under way: its thread ends by itself, and the table
        is not taken."""
        if self._reloading is not None:
            self._reloading.cancel()
            await asyncio.gather(self._reloading, return_exceptions=True)

    async def _reload(self, ledger: Ledger, files: Fingerprint) -> None:
        """Take in the edit once it is valid and agrees with the ledger (the slots windows
        were moved to are still in the table); else log why and keep the last good table.
        ``files`` is what was seen before reading, so an edit made meanwhile is read next."""
        began = asyncio.get_running_loop().time()
        try:
            inputs = await asyncio.to_thread(self.read)
            agrees_with_ledger(inputs, await ledger.active_slots())
        except InputError as exc:
            self.table.refuse(exc.problems, files)
            self.on_reloaded(asyncio.get_running_loop().time() - began, False)
            for problem in exc.problems:
                event(log, logging.ERROR, "edit rejected, the last good table stays in force",
                      problem=str(problem))
            return
        await record_set_aside(ledger, inputs, self.clock())
        self.table.take(inputs, files)
        logs.use_zone(inputs.config.settings.timezone)
        self.on_reloaded(asyncio.get_running_loop().time() - began, True)
        event(log, logging.INFO, "table reloaded", windows=len(inputs.config.windows),
              contacts=len(inputs.contacts), set_aside=len(inputs.set_aside))
        warn_of_set_aside(inputs)
