"""The notices the daemon sends: a task each, started when due, reported when it ends,
started again after a backoff when it fails (a broken template, a ledger away), and after
a long wait when a provider refused our login."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dispatcher.clock import Clock, Sleep
from dispatcher.errors import InputError
from dispatcher.ledger import FINAL_STATES, DeliveryState, Ledger, NoticeState
from dispatcher.logs import event, failure
from dispatcher.schedule import Action, Decision
from dispatcher.send import (
    Backend,
    Backends,
    Fix,
    SendResult,
    as_moved,
    send_session,
)
from dispatcher.table import (
    Channel,
    Config,
    Inputs,
    Notice,
    TableKeeper,
    build_notice,
    find_window,
)

log = logging.getLogger("dispatcher.daemon")
BackendFactory = Callable[[Config, Iterable[Channel], Mapping[str, str]],
                          Mapping[Channel, Backend]]
PROGRESS_SECONDS = 10.0
REFUSED_RETRY_SECONDS = 600.0  # a notice whose provider refused our login waits this long
RESUMED = "#resumed"  # marks the task of a notice resumed before its time


@dataclass
class NoticeSends:
    table: TableKeeper
    clock: Clock
    env: Mapping[str, str]
    backends: BackendFactory
    sleep: Sleep
    stopping: asyncio.Event
    on_result: Callable[[Decision, SendResult], None] | None = None
    on_missed: Callable[[Decision], None] | None = None
    on_started: Callable[[Decision, float], None] | None = None  # and its lateness, seconds
    on_outage: Callable[[Channel, bool], None] | None = None  # a provider down (True) or back
    on_failed: Callable[[Decision], None] | None = None  # a notice that could not be sent
    ledger: Ledger | None = None  # from the daemon's open
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    planning: set[str] = field(default_factory=set)  # started, deliveries not yet planned
    # notice key → (failures in a row, not to be started again before)
    _failed: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    async def wait(self) -> None:
        """Until every send started so far has finished."""
        while self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def stop(self, timeout: float) -> None:
        """Wait for the sends (asked to stop) at most ``timeout`` seconds, then cancel."""
        running = list(self.running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def start(self, decision: Decision) -> None:
        """Start sending the decided notice, unless it is being sent, the daemon is
        stopping, or it failed and waits out its backoff. A notice resumed before its time
        runs beside the send that releases it at its time (a retry of its SMS due at 01:03
        does not hold back the e-mail due at 01:00; the claims keep them apart)."""
        resuming = decision.action is Action.RESUME
        task_key = decision.key + RESUMED if resuming else decision.key
        if task_key in self.running or self.stopping.is_set() or (
                resuming and decision.key in self.running):
            return
        failed = self._failed.get(decision.key)
        if failed is not None and self.clock() < failed[1]:
            return
        # the table in force now, not when the task first runs: a reload may end between
        task = asyncio.create_task(self._send(decision, self.table.inputs), name=task_key)
        self.running[task_key] = task
        task.add_done_callback(lambda _: self.running.pop(task_key, None))

    async def _send(self, decision: Decision, inputs: Inputs) -> None:
        assert self.ledger is not None
        window = find_window(inputs.config.windows, decision.window.id)
        lateness = (self.clock() - decision.at).total_seconds()
        event(log, logging.INFO, "notice started", **notice_fields(decision),
              late_seconds=round(lateness, 3))
        if self.on_started is not None:
            self.on_started(decision, lateness)
        progress = asyncio.create_task(self._log_progress(decision))
        try:
            notice = build_notice(window, decision.slot, decision.phase,
                                  decision.notice.new_slot, decision.notice.lead,
                                  decision.notice.report)
            if decision.notice.step is not None:  # an escalation, as the table says now
                notice = replace(notice, step=window.step(decision.notice.step.channel))
            notice = await as_moved(self.ledger, notice)  # a postponement: as it was made
            channels = list(notice.channels)
            resuming = decision.action is Action.RESUME
            if resuming:  # before its time: only what was released goes, planned as it was
                channels = await self._released(notice, channels)
            self.planning.add(decision.key)
            async with Backends(self.backends(inputs.config, channels, self.env)) as backends:
                result = await send_session(
                    inputs, self.ledger, backends, notice, channels, "schedule", self.clock,
                    stopping=self.stopping, sleep=self.sleep, on_outage=self.on_outage,
                    on_counted=lambda _: self.planning.discard(decision.key),
                    release_at=decision.at, release=not resuming)
        except InputError as exc:  # a message that cannot be rendered: logged once
            failures, wait = self._back_off(decision)
            if failures == 1:
                for problem in exc.problems:
                    event(log, logging.ERROR, "notice not sent", **notice_fields(decision),
                          problem=str(problem), fix=Fix.TABLE.text)
            await self._failed_now(decision, "; ".join(str(p) for p in exc.problems),
                                   Fix.TABLE)
            return
        except Exception as exc:  # any failure but bad input: logged, tried again later
            failures, wait = self._back_off(decision)
            error = f"{type(exc).__name__}: {exc}"
            failure(log, "notice failed, starting it again later", exc, **notice_fields(decision),
                    error=error, retry_in_seconds=round(wait, 1), failures=failures)
            await self._failed_now(decision, error, Fix.RETRY)
            return
        finally:
            self.planning.discard(decision.key)
            progress.cancel()
        self._report(decision, result)
        if result.stopped:
            await self._wait_for_a_fix(decision, result)
        else:
            self._failed.pop(decision.key, None)
            await self._patiently(self.ledger.clear_failure(
                decision.window.id, decision.slot.name, decision.notice.tag))

    async def _failed_now(self, decision: Decision, reason: str, fix: Fix) -> None:
        """Say where operators look that the notice could not be sent: the ledger (for
        `status`, `windows` and the console) and the failed-notice counter."""
        if self.on_failed is not None:
            self.on_failed(decision)
        assert self.ledger is not None
        await self._patiently(self.ledger.record_failure(
            decision.window.id, decision.slot.name, decision.notice.tag, reason, fix.value,
            self.clock()))

    async def _patiently(self, writing: Awaitable[object]) -> None:
        """A write of a notice's failure or recovery; a ledger that cannot take it is
        logged (the next send's outcome writes it again)."""
        try:
            await writing
        except Exception as exc:
            event(log, logging.WARNING, "notice failure not recorded in the ledger",
                  error=f"{type(exc).__name__}: {exc}")

    async def _released(self, notice: Notice, channels: list[Channel]) -> list[Channel]:
        """Those of ``channels`` the notice's release times let go now (the others are
        planned at the notice's time: addresses and suppressions as they are then)."""
        assert self.ledger is not None
        record = await self.ledger.notice(notice.window.id, notice.slot.name, notice.tag)
        if record is None:
            return []
        released = await self.ledger.released_channels(record.id, self.clock())
        return [c for c in channels if c.value in released]

    async def _wait_for_a_fix(self, decision: Decision, result: SendResult) -> None:
        """A provider refused our login: the notice is started again only after a long
        wait (trying a wrong password again and again can lock the account), or at once
        when the daemon is restarted with the corrected login."""
        self._back_off(decision, REFUSED_RETRY_SECONDS)
        channels = ",".join(c.value for c in result.stopped)
        error = "; ".join(result.stopped.values())
        event(log, logging.ERROR, "notice paused: a provider refused our login",
              **notice_fields(decision), channels=channels, error=error,
              retry_in_seconds=REFUSED_RETRY_SECONDS, fix=Fix.LOGIN.text)
        await self._failed_now(decision, f"{channels}: login refused: {error}", Fix.LOGIN)

    def _back_off(self, decision: Decision, wait: float | None = None) -> tuple[int, float]:
        """A notice's send failed: start it again after a backoff (``[retry]``'s probe
        delay, or ``wait`` seconds), so that a failing ledger, backend or template is not
        hammered every tick. Returns the failures in a row and the seconds until the next
        start."""
        failures = self._failed.get(decision.key, (0, self.clock()))[0] + 1
        if wait is None:
            wait = self.table.inputs.config.retry.probe_delay(failures, random.random())
        self._failed[decision.key] = (failures, self.clock() + timedelta(seconds=wait))
        return failures, wait

    def _report(self, decision: Decision, result: SendResult) -> None:
        counts = {f"{channel}.{state}": n for (channel, state), n in sorted(result.counts.items())}
        level = logging.WARNING if result.any_failed else logging.INFO
        stopped = self.stopping.is_set() and result.notice.state != NoticeState.DONE
        event(log, level, "notice interrupted by stop" if stopped else "notice finished",
              **notice_fields(decision), state=result.notice.state, **counts)
        if self.on_result is not None:
            self.on_result(decision, result)

    async def _log_progress(self, decision: Decision) -> None:
        assert self.ledger is not None
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            record = await self.ledger.notice(decision.window.id, decision.slot.name,
                                               decision.notice.tag)
            if record is None:
                continue
            counts = await self.ledger.counts(record.id)
            done = sum(n for (_, s), n in counts.items() if DeliveryState(s) in FINAL_STATES)
            event(log, logging.INFO, "notice progress", **notice_fields(decision), done=done,
                  total=sum(counts.values()))

    async def record_missed(self, decision: Decision) -> None:
        assert self.ledger is not None
        if await self.ledger.record_missed(decision.window.id, decision.slot.name,
                                            decision.notice.tag, self.clock()):
            event(log, logging.WARNING, "notice missed", **notice_fields(decision),
                  reason="its time passed while no daemon was running")
            if self.on_missed is not None:
                self.on_missed(decision)


def notice_fields(decision: Decision) -> dict[str, object]:
    """What every log line about a notice names."""
    return {"window": decision.window.number, "notice": decision.key,
            "phase": decision.notice.tag, "slot": decision.slot.name, "at": decision.at}
