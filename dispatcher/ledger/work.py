"""The operators' reports of the work (extended, done, update), as the ledger records them:
each once, numbered per kind in the order made; and the alerts sent to the operators about
the work, each once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dispatcher.errors import Problem, StaleError
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import AlertTrouble
from dispatcher.ledger.tables import operator_alerts, work_reports
from dispatcher.table import Channel, Report, WorkKey, WorkReport


class WorkLog(EngineUser):
    """Reports of the work: recorded only on the view they were made from."""

    async def record_report(self, report: WorkReport) -> None:
        """Record ``report``, numbered as the operator's view expected (the next of its
        kind), if the work was not reported done meanwhile: compare and set. StaleError if
        another report got there first."""
        c = work_reports.c
        try:
            async with self._begin_serial(report.window_id) as conn:
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


    async def claim_alert(self, alert: str, channel: Channel, address: str, now: datetime
                          ) -> int | None:
        """Claim the sending of ``alert`` to ``address``: its id, or None if it was claimed
        before (by this process or another)."""
        try:
            async with self._begin() as conn:
                result = await conn.execute(operator_alerts.insert().values(
                    alert=alert, channel=channel.value, address=address, at=now,
                    error=UNSENT_ALERT))
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError:
            return None

    async def finish_alert(self, alert_id: int, error: str | None) -> None:
        """The claimed alert was sent (``error`` None), or why it could not be."""
        async with self._begin() as conn:
            await conn.execute(update(operator_alerts).where(
                operator_alerts.c.id == alert_id).values(error=error))

    async def alerts_sent(self, alert: str) -> list[tuple[str, str, str | None]]:
        """(channel, address, error) of each claim of ``alert``."""
        c = operator_alerts.c
        async with self._connect() as conn:
            rows = await conn.execute(select(c.channel, c.address, c.error)
                                      .where(c.alert == alert).order_by(c.id))
            return [(channel, address, error) for channel, address, error in rows]


    async def alert_troubles(self, claimed_before: datetime, since: datetime
                             ) -> list[AlertTrouble]:
        """Each alert to an address claimed ``since`` that did not go: failed (with why),
        or claimed before ``claimed_before`` and still not sent (its sender stopped holding
        it), oldest first."""
        c = operator_alerts.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(c.alert, c.channel, c.address, c.at, c.error)
                .where(c.error.is_not(None), c.at >= since).order_by(c.id))
            return [AlertTrouble(alert, channel, address, at,
                                 None if error == UNSENT_ALERT else error)
                    for alert, channel, address, at, error in rows
                    if error != UNSENT_ALERT or at < claimed_before]

    async def alert_counts(self, claimed_before: datetime) -> Counter[str]:
        """The alerts to an address by outcome: sent, failed, unsent (claimed before
        ``claimed_before``, never sent) or sending."""
        c = operator_alerts.c
        counts: Counter[str] = Counter()
        async with self._connect() as conn:
            for error, at in await conn.execute(select(c.error, c.at)):
                counts[_alert_outcome(error, at, claimed_before)] += 1
        return counts


UNSENT_ALERT = "not sent yet"  # a claimed alert's error until its sender says otherwise
# A claimed alert not sent after this long was left by a sender that stopped
ALERT_SEND_SECONDS = timedelta(minutes=2)
# How long an alert that did not go is shown (the night it was about)
ALERT_SHOWN = timedelta(days=1)


def _alert_outcome(error: str | None, at: datetime, claimed_before: datetime) -> str:
    if error is None:
        return "sent"
    if error != UNSENT_ALERT:
        return "failed"
    return "unsent" if at < claimed_before else "sending"


def _conflict(report: WorkReport, made: list[tuple[Report, int]]) -> Problem | None:
    if any(kind is Report.DONE for kind, _ in made):
        return _stale(report, "the work was reported done")
    if any(kind is Report.INTERRUPTED for kind, _ in made):
        return _stale(report, "the work was interrupted (中断)")
    if report.seen is not None and report.seen != len(made):
        return _stale(report, f"{len(made) - report.seen} other report(s) were made since")
    count = sum(1 for kind, _ in made if kind is report.kind)
    if report.number != count + 1:
        return _stale(report, f"it has {count} {report.kind.value} report(s) now, not "
                              f"{report.number - 1}")
    return None


def _stale(report: WorkReport, what: str) -> Problem:
    return Problem("WINDOW", f"window {report.window_id} ({report.slot}) changed since: {what}; "
                             "look again")
