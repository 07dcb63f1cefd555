"""Provider reports on deliveries (receipts): appended once each, moving a delivery's state
only forward."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.ledger.deliveries import DELIVERY_COLUMNS
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import (
    DeliveryRecord,
    EventRecord,
    ForgedReport,
    NoticeRecord,
    Report,
)
from dispatcher.ledger.states import (
    Applied,
    Cause,
    DeliveryState,
    NoticeState,
    allowed_from,
    reported_move,
)
from dispatcher.ledger.tables import deliveries, delivery_events, forged_reports, notices

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
                applied += await self._apply_chunk(conn, chunk, now)
        return applied

    async def record_forged(self, reports: Sequence[ForgedReport], now: datetime) -> int:
        """Keep each forged report once (by digest); returns how many were new."""
        if not reports:
            return 0
        rows = [{"source": r.source, "claimed": r.claimed, "detail": r.detail,
                 "received_at": now, "digest": r.digest} for r in reports]
        async with self._begin() as conn:
            inserted = await conn.execute(
                self._insert_ignore(forged_reports).returning(forged_reports.c.id), rows)
            return len(inserted.all())

    async def forged(self, limit: int = 1000) -> list[ForgedReport]:
        """The forged reports kept, newest first."""
        f = forged_reports.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(f.source, f.claimed, f.detail, f.digest, f.received_at)
                .order_by(f.id.desc()).limit(limit))
            return [ForgedReport(*row) for row in rows]

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
    async def _states(conn: AsyncConnection, ids: set[int]
                      ) -> tuple[dict[int, DeliveryState], set[int]]:
        """The deliveries' states, and which of them belong to a missed notice."""
        d, n = deliveries.c, notices.c
        rows = await conn.execute(select(d.id, d.state, n.state)
                                  .join(notices, n.id == d.notice_id)
                                  .where(d.id.in_(sorted(ids))))
        states, of_missed = {}, set()
        for delivery_id, state, notice_state in rows:
            states[delivery_id] = DeliveryState(state)
            if notice_state == NoticeState.MISSED:
                of_missed.add(delivery_id)
        return states, of_missed

    async def _apply_chunk(self, conn: AsyncConnection, chunk: Sequence[Report],
                           now: datetime) -> list[Applied]:
        """Events in one insert, state moves in one update: a chunk costs a few statements."""
        states, of_missed = await self._states(conn, {r.delivery_id for r in chunk})
        applied: list[Applied | None] = [_before_recording(r, states) for r in chunk]
        fresh = {r.digest: r for r, a in zip(chunk, applied, strict=True) if a is None}
        recorded = await self._record_events(conn, list(fresh.values()), now)
        moves: list[tuple[Report, DeliveryState, DeliveryState]] = []
        for index, report in enumerate(chunk):
            if applied[index] is not None:
                continue
            if report.digest not in recorded or fresh[report.digest] is not report:
                applied[index] = Applied.DUPLICATE
                continue
            current = states[report.delivery_id]
            moved = reported_move(current, report.state)
            if moved is DeliveryState.PENDING and report.delivery_id in of_missed:
                moved = None  # its notice's time passed: nothing of it is sent again
            if moved is None:
                applied[index] = Applied.RECORDED
                continue
            moves.append((report, current, moved))
            states[report.delivery_id] = moved
            applied[index] = Applied.MOVED
        await self._move(conn, moves, now)
        return [a for a in applied if a is not None]

    async def _record_events(self, conn: AsyncConnection, reports: list[Report],
                             now: datetime) -> set[str]:
        """Insert the events not yet there; the digests of those inserted."""
        if not reports:
            return set()
        rows = [{"delivery_id": r.delivery_id, "source": r.source, "status": r.status,
                 "code": r.code, "detail": r.detail, "received_at": now, "digest": r.digest}
                for r in reports]
        inserted = await conn.execute(
            self._insert_ignore(delivery_events).returning(delivery_events.c.digest), rows)
        return {digest for (digest,) in inserted}

    async def _move(self, conn: AsyncConnection,
                    moves: list[tuple[Report, DeliveryState, DeliveryState]], now: datetime
                    ) -> None:
        if not moves:
            return
        d = deliveries.c
        statement = (
            update(deliveries)
            .where(d.id == bindparam("b_id"), d.state == bindparam("b_from"))
            .values(state=bindparam("b_to"),
                    error_code=func.coalesce(bindparam("b_code", type_=d.error_code.type),
                                             d.error_code),
                    last_error=func.coalesce(bindparam("b_error", type_=d.last_error.type),
                                             d.last_error),
                    next_attempt_at=func.coalesce(
                        bindparam("b_next", type_=d.next_attempt_at.type), d.next_attempt_at),
                    updated_at=now))
        await conn.execute(statement, [_move_params(r, current, moved, now)
                                       for r, current, moved in moves])
        again = [r.delivery_id for r, _, moved in moves if moved is DeliveryState.PENDING]
        if again:
            await self._reopen_notices(conn, again)

    @staticmethod
    async def _reopen_notices(conn: AsyncConnection, delivery_ids: list[int]) -> None:
        """A delivery due again makes its notice one that a sender should be at now (the
        claim still holds back what is not released). Compare and set: a notice missed
        meanwhile stays missed."""
        n = notices.c
        of_them = select(deliveries.c.notice_id).where(deliveries.c.id.in_(delivery_ids))
        allowed = [s.value for s in allowed_from(Cause.REPORT, NoticeState.SENDING)]
        await conn.execute(update(notices).where(n.id.in_(of_them), n.state.in_(allowed))
                           .values(state=NoticeState.SENDING.value, finished_at=None))


def _before_recording(report: Report, states: Mapping[int, DeliveryState]
                      ) -> Applied | None:
    """UNKNOWN or EARLY when the report is not to be recorded at all, else None."""
    current = states.get(report.delivery_id)
    if current is None:
        return Applied.UNKNOWN
    if report.state is DeliveryState.PENDING and current is DeliveryState.SENDING:
        return Applied.EARLY
    return None


def _move_params(report: Report, current: DeliveryState, moved: DeliveryState,
                 now: datetime) -> dict[str, Any]:
    failed = moved is not DeliveryState.DELIVERED
    return {"b_id": report.delivery_id, "b_from": current.value, "b_to": moved.value,
            "b_code": (report.code or report.status) if failed else None,
            "b_error": report.detail if failed else None,
            "b_next": (report.retry_at or now) if moved is DeliveryState.PENDING else None}
