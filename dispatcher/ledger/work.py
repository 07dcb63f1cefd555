"""The operators' reports of the work (extended, done, update), as the ledger records them:
each once, numbered per kind in the order made."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dispatcher.errors import Problem, StaleError
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.tables import work_reports
from dispatcher.table import Channel, Report, WorkKey, WorkReport


class WorkLog(EngineUser):
    """Reports of the work: recorded only on the view they were made from."""

    async def record_report(self, report: WorkReport) -> None:
        """Record ``report``, numbered as the operator's view expected (the next of its
        kind), if the work was not reported done meanwhile: compare and set. StaleError if
        another report got there first."""
        c = work_reports.c
        try:
            async with self._begin() as conn:
                rows = await conn.execute(select(c.kind, c.number).where(
                    c.window_id == report.window_id, c.slot == report.slot))
                made = [(Report(kind), number) for kind, number in rows]
                problem = _conflict(report, made)
                if problem is not None:
                    raise StaleError([problem])
                await conn.execute(work_reports.insert().values(
                    window_id=report.window_id, slot=report.slot, kind=report.kind.value,
                    number=report.number, at=report.at, until=report.until,
                    text=report.text, actor=report.actor,
                    channels=",".join(c.value for c in report.channels)))
        except IntegrityError:  # another report of the same view got there first
            raise StaleError([_stale(report, "another report got there first")]) from None

    async def work_reports(self) -> dict[WorkKey, list[WorkReport]]:
        """Every report, by (window id, slot), in the order made."""
        c = work_reports.c
        found: dict[WorkKey, list[WorkReport]] = {}
        async with self._connect() as conn:
            for row in await conn.execute(select(work_reports).order_by(c.id)):
                found.setdefault((row.window_id, row.slot), []).append(WorkReport(
                    row.window_id, row.slot, Report(row.kind), row.number, row.at, row.until,
                    row.text, row.actor,
                    tuple(Channel(c) for c in row.channels.split(",") if c)))
        return found


def _conflict(report: WorkReport, made: list[tuple[Report, int]]) -> Problem | None:
    if any(kind is Report.DONE for kind, _ in made):
        return _stale(report, "the work was reported done")
    count = sum(1 for kind, _ in made if kind is report.kind)
    if report.number != count + 1:
        return _stale(report, f"it has {count} {report.kind.value} report(s) now, not "
                              f"{report.number - 1}")
    return None


def _stale(report: WorkReport, what: str) -> Problem:
    return Problem("WINDOW", f"window {report.window_id} ({report.slot}) changed since: {what}; "
                             "look again")
