"""`dispatcher run`: start and end notices on time, following the table and the ledger.

Every second the daemon looks at the files (config, contacts, templates) and at the
ledger (postponements by `dispatcher postpone`, notices sent by hand or by another
daemon), decides again what each broadcast window needs, and makes its jobs match. An
invalid edit is logged and the last good version stays in force. SIGTERM or SIGINT stops
it cleanly: no new claims, sends in flight finish, and a restart picks up where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dispatcher import logs
from dispatcher.clock import Clock, Sleep
from dispatcher.daemon.overruns import OverrunWatch
from dispatcher.daemon.receipt_services import ReceiptServices
from dispatcher.daemon.reloads import Reloads
from dispatcher.daemon.sends import BackendFactory, NoticeSends, notice_fields
from dispatcher.daemon.systemd import Notifier, status_line
from dispatcher.daemon.tables import (
    agrees_with_ledger,
    off_their_slot,
    ready_to_send,
    record_set_aside,
    warn_of_set_aside,
)
from dispatcher.errors import LedgerUnavailable
from dispatcher.ledger import Ledger, engine_url
from dispatcher.logs import Failures, event
from dispatcher.publish import Publisher
from dispatcher.schedule import Action, Decision, NoticeJobs, decide
from dispatcher.send import SendResult, make_backends
from dispatcher.table import (
    Inputs,
    TableKeeper,
    Window,
    spoken_duration,
)
from dispatcher.web import Metrics

log = logging.getLogger("dispatcher.daemon")
TICK_SECONDS = 1.0
MAX_TICK_PAUSE_SECONDS = 60.0
# How long the loop may wait for the Python thread running while a reload or a preflight
# works in another (default 5 ms: a handover at each ledger query added up to 0.5 s late)
SWITCH_INTERVAL_SECONDS = 0.001
STOP_TIMEOUT_SECONDS = 30.0
EARLY_FIRE_SECONDS = 1.0  # how far ahead of the daemon's clock a job may fire


@dataclass
class Daemon:
    config_path: Path
    clock: Clock
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    on_result: Callable[[Decision, SendResult], None] | None = None
    on_missed: Callable[[Decision], None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # how the daemon reaches the providers: the configured backends (a seam for tests)
    backends: BackendFactory = make_backends
    sleep: Sleep = asyncio.sleep  # how sends wait (retries, rates): the clock's own

    def __post_init__(self) -> None:
        # the table in force, which its console shares
        self.table = TableKeeper(self.config_path, ready_to_send(self.clock, self.env))
        self.metrics = Metrics()
        self._sends = NoticeSends(self.table, self.clock, self.env, self.backends, self.sleep,
                                  self.stopping, self.on_result, self.on_missed,
                                  self._started, self.metrics.provider_down,
                                  self.metrics.notice_failed)
        self._jobs = NoticeJobs(self._fire)
        self._overruns = OverrunWatch(self.backends, self.env)
        self._ledger: Ledger | None = None
        self._receipts: ReceiptServices | None = None
        self._ledger_down_since: datetime | None = None
        self._publisher = Publisher()
        self._systemd = Notifier(self.env, os.getpid())
        self._publish_failing = False
        self._tick_failures = Failures(log, "tick")
        self._unknown_slots: set[tuple[str, str]] = set()  # (window, slot) logged
        self._reloads = Reloads(self.table, self.clock, self._load,
                                lambda: self._jobs.scheduled().values(),
                                lambda: bool(self._sends.planning), self.metrics.reloaded)

    async def run(self) -> None:
        """Until a stop is requested (a signal, or ``stopping`` set by the caller)."""
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        await self.open()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        try:
            while not self.stopping.is_set():
                async with self._systemd.watching():
                    pause = await self.guarded_tick()
                self._systemd.after_tick(status_line(
                    self.scheduled(), len(self._sends.running),
                    self.inputs.config.settings.timezone))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self._systemd.pause(pause))
        finally:
            await self.close()
            self._systemd.close()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def open(self) -> None:
        """Read the table (InputError if it is not valid), connect to the ledger and start
        the scheduler (inside a running event loop)."""
        files = self.table.edit_seen() or ()
        self.table.take(await asyncio.to_thread(self._load), files)
        # the first reading is taken in as an edit would be: /metrics is honest from the start
        self.metrics.reloaded(self.table.load_seconds, True)
        logs.use_zone(self.inputs.config.settings.timezone)
        settings = self.inputs.config.settings
        url = engine_url(settings.ledger_url, self.inputs.config.path.parent)
        self._ledger = await Ledger.open(url)
        self._sends.ledger = self._ledger
        self._receipts = ReceiptServices(self.inputs.config, self._ledger, self.env, self.clock,
                                         self.table, self.metrics)
        try:
            agrees_with_ledger(self.inputs, await self._ledger.active_slots())
            await record_set_aside(self._ledger, self.inputs, self.clock())
            await self._receipts.start()
        except BaseException:
            await self._ledger.close()
            raise
        self._jobs.start()
        # the ledger as opened: a SQLite file's absolute path, a password hidden
        event(log, logging.INFO, "daemon started", config=str(self.config_path.resolve()),
              ledger=url.render_as_string(hide_password=True), pid=os.getpid())
        warn_of_set_aside(self.inputs)

    async def guarded_tick(self) -> float:
        """A tick that never raises: an exception is logged (its traceback once, then a
        count) and the next tick waits longer, up to a minute. Returns the seconds to wait."""
        try:
            await self.tick()
        except Exception as exc:
            failures = self._tick_failures.failed(exc)
            return min(TICK_SECONDS * 2.0 ** (failures - 1), MAX_TICK_PAUSE_SECONDS)
        self._tick_failures.recovered()
        return TICK_SECONDS

    async def tick(self) -> list[Decision]:
        """One look at the files and the ledger: reload if needed, then reconcile. A ledger
        that does not answer is logged once and looked at again on the next tick."""
        try:
            await self.reload_if_changed()
            decisions = await self.reconcile()
            await self.republish()
        except LedgerUnavailable as exc:
            self.metrics.ledger_errors.inc()
            if self._ledger_down_since is None:
                self._ledger_down_since = self.clock()
                event(log, logging.WARNING, "ledger unreachable, retrying every tick",
                      error=str(exc))
            return []
        if self._ledger_down_since is not None:
            seconds = (self.clock() - self._ledger_down_since).total_seconds()
            self._ledger_down_since = None
            event(log, logging.INFO, "ledger reachable again", after=spoken_duration(seconds))
        return decisions

    async def republish(self) -> None:
        """Rewrite the page, calendar and feed when what they show has changed; a folder
        that cannot be written is logged once, and tried again on every tick."""
        assert self._ledger is not None
        try:
            written = await self._publisher.refresh(self.inputs.config, self._ledger,
                                                    self.clock())
        except OSError as exc:
            if not self._publish_failing:
                event(log, logging.ERROR, "publishing failed", error=str(exc))
            self._publish_failing = True
            return
        self._publish_failing = False
        if written:
            event(log, logging.INFO, "published", folder=str(written[0].parent))

    def _started(self, decision: Decision, lateness: float) -> None:
        self.metrics.lateness.labels(decision.phase.value).observe(max(lateness, 0.0))

    def scheduled(self) -> dict[str, datetime]:
        """The jobs waiting, by notice key, with their times."""
        return self._jobs.scheduled()

    async def wait_for_sends(self) -> None:
        """Until every send started so far has finished (the operators' alerts too)."""
        await self._sends.wait()
        await self._overruns.wait()

    def request_stop(self, signum: int | None = None) -> None:
        if not self.stopping.is_set():
            event(log, logging.INFO, "daemon stopping", signal=signum,
                  in_flight=sorted(self._sends.running))
            self._systemd.stopping()
        self.stopping.set()

    async def reconcile(self) -> list[Decision]:
        """Decide again from the table, the ledger and now; make jobs and sends match."""
        ledger, settings = self._ledger, self.inputs.config.settings
        assert ledger is not None
        active = await ledger.active_slots()
        windows, reports = self._windows_on_known_slots(active), await ledger.work_reports()
        decisions = decide(windows, active, await ledger.notice_states(), self.clock(),
                           timedelta(minutes=settings.catch_up_minutes),
                           await ledger.slot_moves(), reports,
                           timedelta(minutes=settings.overrun_after_minutes),
                           await ledger.notice_starts())
        if not self.stopping.is_set():
            self._overruns.look(self.inputs.config, windows, active, reports, ledger,
                                self.clock())
        changed, removed = self._jobs.sync(d for d in decisions if d.key not in self._sends.running)
        for decision in changed:
            event(log, logging.INFO, "notice scheduled", **notice_fields(decision))
        for key in removed:
            event(log, logging.INFO, "notice unscheduled", notice=key)
        for decision in decisions:
            if decision.action in (Action.SEND_NOW, Action.RESUME):
                self._sends.start(decision)
            elif decision.action is Action.MISSED:
                await self._sends.record_missed(decision)
        return decisions

    def _windows_on_known_slots(self, active: Mapping[str, str]) -> list[Window]:
        """The windows whose active slot is in the table in force. Another process (a
        `postpone` run with an edited table this daemon rejected) may have moved a window
        to a slot it does not know: that window waits, logged once, and the others go on."""
        windows = self.inputs.config.windows
        off = off_their_slot(windows, active)
        for _, window, slot in off:
            if (window.id, slot) not in self._unknown_slots:
                self._unknown_slots.add((window.id, slot))
                event(log, logging.ERROR, "window moved to a slot this table does not have; "
                      "its notices wait for a table that has it", window=window.number,
                      slot=slot)
        waiting = {window.id for _, window, _ in off}
        return [w for w in windows if w.id not in waiting]

    async def _fire(self, key: str) -> None:
        at = self._jobs.firing(key)
        try:
            early = (at - self.clock()).total_seconds() if at is not None else 0.0
            if 0 < early <= EARLY_FIRE_SECONDS:
                # the scheduler's timer ran a little ahead of the daemon's clock: decided
                # now, the job would be scheduled again and skipped as still running
                await asyncio.sleep(early)
        finally:
            self._jobs.fired(key)
        await self.reconcile()

    @property
    def inputs(self) -> Inputs:  # the table in force (its last good version), from open on
        return self.table.inputs

    def _load(self) -> Inputs:  # blocking: in a worker thread
        return self.table.read()

    async def reload_if_changed(self) -> None:
        assert self._ledger is not None
        await self._reloads.if_changed(self._ledger)

    async def wait_for_reload(self) -> None:
        """Until the reload under way, if any, has ended (for tests and the demo)."""
        await self._reloads.wait()

    async def close(self) -> None:
        self._jobs.shutdown()
        await self._reloads.cancel()
        await self._sends.stop(STOP_TIMEOUT_SECONDS)  # before the ledger goes
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._overruns.wait(), STOP_TIMEOUT_SECONDS)
        if self._receipts is not None:
            await self._receipts.stop(STOP_TIMEOUT_SECONDS)
        if self._ledger is not None:
            await self._ledger.close()
        event(log, logging.INFO, "daemon stopped")

