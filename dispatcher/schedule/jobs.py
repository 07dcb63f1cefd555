"""APScheduler 3.11 jobs, one per notice the schedule says to send later.

The jobs are derived from the decisions (table + ledger + now) at start-up and on every
change; they are never the record. A job only says "look at this notice now": the
daemon decides again when it fires, so an edit made since is respected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from dispatcher.schedule.decide import Action, Decision

Fire = Callable[[str], Awaitable[None]]


class NoticeJobs:
    def __init__(self, fire: Fire) -> None:
        self._fire = fire
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._times: dict[str, datetime] = {}
        self._firing: set[str] = set()  # jobs running: left alone until they have decided

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def scheduled(self) -> dict[str, datetime]:
        return dict(self._times)

    def sync(self, decisions: Iterable[Decision]) -> tuple[list[Decision], list[str]]:
        """Make the jobs match the decisions; returns the jobs added or moved, and removed."""
        wanted = {d.key: d for d in decisions
                  if d.action is Action.SCHEDULE and d.key not in self._firing}
        changed = []
        for key, decision in wanted.items():
            if self._times.get(key) == decision.at:
                continue
            # A late job still runs (no grace limit): the daemon decides if it is meaningful.
            self._scheduler.add_job(self._fire, DateTrigger(run_date=decision.at), args=[key],
                                    id=key, replace_existing=True, misfire_grace_time=None,
                                    coalesce=True)
            self._times[key] = decision.at
            changed.append(decision)
        removed = [key for key in self._times if key not in wanted and key not in self._firing]
        for key in removed:
            del self._times[key]
            if self._scheduler.get_job(key) is not None:
                self._scheduler.remove_job(key)
        return changed, removed

    def firing(self, key: str) -> datetime | None:
        """A job has started: the time it was set for. Until ``fired``, no decision
        schedules it again (the scheduler would skip it as still running)."""
        self._firing.add(key)
        return self._times.get(key)

    def fired(self, key: str) -> None:
        """Forget a job that has run."""
        self._firing.discard(key)
        self._times.pop(key, None)
