"""Provider reports on deliveries (receipts): appended once each, moving a delivery's state
only forward."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.ledger.deliveries import DELIVERY_COLUMNS
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import DeliveryRecord, EventRecord, NoticeRecord, Report
from dispatcher.ledger.states import Applied, DeliveryState, NoticeState, reported_move
from dispatcher.ledger.tables import deliveries, delivery_events, notices

_CHUNK = 500


class EventLog(EngineUser):
    """Receipts: what providers reported after taking a message, and the lookups that match
    a report to its delivery."""

    async def apply_reports(self, reports: Sequence[Report], now: datetime) -> list[Applied]:
        """Record each report once and move its delivery's state forward if it says so."""
        applied: list[Applied] = []
        for start in range(0, len(reports), _CHUNK):
            chunk = reports[start:start + _CHUNK]
            async with self._begin() as conn:
                states = await self._states(conn, {r.delivery_id for r in chunk})
                for report in chunk:
                    applied.append(await self._apply(conn, report, states, now))
        return applied

    async def events_of(self, delivery_id: int) -> list[EventRecord]:
        e = delivery_events.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(e.delivery_id, e.source, e.status, e.code, e.detail, e.received_at)
                .where(e.delivery_id == delivery_id).order_by(e.id))
            return [EventRecord(*row) for row in rows]

    async def deliveries_by_id(self, ids: Iterable[int]
                               ) -> dict[int, tuple[DeliveryRecord, NoticeRecord]]:
        """Each delivery that exists, with its notice."""
        wanted = sorted(set(ids))
        found: dict[int, tuple[DeliveryRecord, NoticeRecord]] = {}
        d = deliveries.c
        async with self._connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    select(*DELIVERY_COLUMNS, notices).join(notices, notices.c.id == d.notice_id)
                    .where(d.id.in_(wanted[start:start + _CHUNK])))
                for row in rows:
                    values = tuple(row)
                    delivery = DeliveryRecord(*values[:len(DELIVERY_COLUMNS)])
                    notice = NoticeRecord(**dict(zip(notices.c.keys(),
                                                     values[len(DELIVERY_COLUMNS):],
                                                     strict=True)))
                    found[delivery.id] = (delivery, notice)
        return found

    async def sent_on(self, channels: Sequence[str]) -> list[tuple[DeliveryRecord, NoticeRecord]]:
        """Every delivery of these channels a provider took, with its notice: what a report
        that names only the message (its Message-ID) is matched against."""
        d = deliveries.c
        taken = [s.value for s in (DeliveryState.SENT, DeliveryState.UNCERTAIN,
                                   DeliveryState.DELIVERED)]
        async with self._connect() as conn:
            rows = await conn.execute(
                select(d.id).where(d.channel.in_(list(channels)), d.state.in_(taken)))
            ids = [row[0] for row in rows]
        return list((await self.deliveries_by_id(ids)).values())

    async def awaiting_report(self, channel: str, quiet_since: datetime, sent_after: datetime,
                              limit: int) -> list[DeliveryRecord]:
        """Sent deliveries no report has settled, sent after ``sent_after``, that neither
        a send nor a question has touched since ``quiet_since``; longest quiet first: what
        to ask the provider about."""
        d = deliveries.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(*DELIVERY_COLUMNS)
                .where(d.channel == channel, d.state == DeliveryState.SENT.value,
                       d.provider_ref.is_not(None), d.sent_at > sent_after,
                       d.updated_at < quiet_since)
                .order_by(d.updated_at, d.id).limit(limit))
            return [DeliveryRecord(*row) for row in rows]

    async def mark_asked(self, ids: Sequence[int], now: datetime) -> None:
        """The provider was just asked about these: not again before the next quiet spell."""
        if not ids:
            return
        d = deliveries.c
        async with self._begin() as conn:
            await conn.execute(update(deliveries).where(d.id.in_(list(ids)))
                               .values(updated_at=now))

    @staticmethod
    async def _states(conn: AsyncConnection, ids: set[int]) -> dict[int, DeliveryState]:
        d = deliveries.c
        rows = await conn.execute(select(d.id, d.state).where(d.id.in_(sorted(ids))))
        return {delivery_id: DeliveryState(state) for delivery_id, state in rows}

    async def _apply(self, conn: AsyncConnection, report: Report,
                     states: dict[int, DeliveryState], now: datetime) -> Applied:
        current = states.get(report.delivery_id)
        if current is None:
            return Applied.UNKNOWN
        if report.state is DeliveryState.PENDING and current is DeliveryState.SENDING:
            return Applied.EARLY
        inserted = await conn.execute(
            self._insert_ignore(delivery_events).returning(delivery_events.c.id),
            {"delivery_id": report.delivery_id, "source": report.source,
             "status": report.status, "code": report.code, "detail": report.detail,
             "received_at": now, "digest": report.digest})
        if inserted.first() is None:
            return Applied.DUPLICATE
        moved = reported_move(current, report.state)
        if moved is None:
            return Applied.RECORDED
        await conn.execute(update(deliveries)
                           .where(deliveries.c.id == report.delivery_id,
                                  deliveries.c.state == current.value)
                           .values(_moved_values(moved, report, now)))
        if moved is DeliveryState.PENDING:
            await self._reopen_notice(conn, report.delivery_id)
        states[report.delivery_id] = moved
        return Applied.MOVED

    @staticmethod
    async def _reopen_notice(conn: AsyncConnection, delivery_id: int) -> None:
        """A delivery due again makes its notice one that is still sending."""
        notice_id = select(deliveries.c.notice_id).where(deliveries.c.id == delivery_id)
        await conn.execute(update(notices).where(notices.c.id == notice_id.scalar_subquery())
                           .values(state=NoticeState.SENDING.value, finished_at=None))


def _moved_values(moved: DeliveryState, report: Report, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"state": moved.value, "updated_at": now}
    if moved is DeliveryState.DELIVERED:
        return values
    values.update(error_code=report.code or report.status, last_error=report.detail)
    if moved is DeliveryState.PENDING:
        values["next_attempt_at"] = report.retry_at or now
    return values
