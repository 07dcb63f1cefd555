"""The Ledger API: the single record of what was sent. SQLite by default, PostgreSQL for HA.

Every path that sends claims deliveries here under a lease, so no two paths (a scheduled
job, a manual `send`, a second daemon) send the same delivery at the same time; a lease
left behind by a crash expires and the delivery is claimed again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError as UrlError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dispatcher.errors import ConfigError, LedgerError, single
from dispatcher.ledger.tables import (
    DeliveryState,
    NoticeState,
    audit_log,
    deliveries,
    metadata,
    notices,
    slot_changes,
)

_INSERT_CHUNK = 1000


@dataclass(frozen=True)
class NoticeRecord:
    id: int
    window_id: str
    slot: str
    phase: str
    state: str
    triggered_by: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class PlannedDelivery:
    contact_id: str
    channel: str
    address: str


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds under a lease; ``attempts`` counts this one."""

    id: int
    contact_id: str
    channel: str
    address: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What happened to a claimed delivery, written back in batches."""

    delivery_id: int
    state: DeliveryState
    next_attempt_at: datetime | None = None
    error_code: str | None = None
    last_error: str | None = None
    provider_ref: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    notice_id: int
    contact_id: str
    channel: str
    address: str
    state: str
    attempts: int
    error_code: str | None
    last_error: str | None
    provider_ref: str | None
    sent_at: datetime | None


def engine_url(raw: str, base_dir: Path) -> URL:
    """The async driver URL for ``raw``; a relative SQLite path is relative to ``base_dir``."""
    try:
        url = make_url(raw)
    except UrlError:
        raise single(ConfigError, "[dispatcher].ledger", f"{raw!r} is not a database URL"
                     ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            database = str((base_dir / database).resolve())
        return url.set(drivername="sqlite+aiosqlite", database=database)
    if backend == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    raise single(ConfigError, "[dispatcher].ledger",
                 f"{raw!r}: only sqlite:/// and postgresql:// ledgers are supported")


async def peek(url: URL) -> tuple[dict[str, str], dict[str, str]]:
    """Active slots and notice states, without creating a SQLite ledger that is not there."""
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return {}, {}
    ledger = await Ledger.open(url)
    try:
        return await ledger.active_slots(), await ledger.notice_states()
    finally:
        await ledger.close()


class Ledger:
    """Async access to the ledger database; open with ``await Ledger.open(url)``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    async def open(cls, url: URL) -> Ledger:
        """Connect, and create the tables on first use."""
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        ledger = cls(engine)
        try:
            if engine.dialect.name == "sqlite":
                await _use_wal(engine)
            await _create_schema(engine)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise LedgerError(f"cannot open the ledger {url.render_as_string()}: {exc}") from exc
        return ledger

    async def close(self) -> None:
        await self._engine.dispose()

    async def open_notice(self, window_id: str, slot: str, phase: str, triggered_by: str,
                          now: datetime) -> tuple[NoticeRecord, bool]:
        """The notice for (window, slot, phase), created if new; True if this call created it."""
        async with self._engine.begin() as conn:
            inserted = await conn.execute(
                self._insert_ignore(notices).returning(notices.c.id), {
                    "window_id": window_id, "slot": slot, "phase": phase,
                    "state": NoticeState.SENDING.value, "triggered_by": triggered_by,
                    "created_at": now,
                })
            created = inserted.first() is not None
            record = await self._notice(conn, window_id, slot, phase)
        assert record is not None
        return record, created

    async def record_missed(self, window_id: str, slot: str, phase: str, now: datetime
                            ) -> bool:
        """Record that a notice was too late to send; False if it was already recorded."""
        async with self._engine.begin() as conn:
            inserted = await conn.execute(
                self._insert_ignore(notices).returning(notices.c.id), {
                    "window_id": window_id, "slot": slot, "phase": phase,
                    "state": NoticeState.MISSED.value, "triggered_by": "schedule",
                    "created_at": now, "finished_at": now,
                })
            return inserted.first() is not None

    async def notice_states(self) -> dict[str, str]:
        """Every notice's state, by ``window/slot/phase``."""
        n = notices.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(n.window_id, n.slot, n.phase, n.state))
            return {f"{w}/{s}/{p}": state for w, s, p, state in rows}

    async def move_window(self, window_id: str, from_slot: str, to_slot: str, actor: str,
                          reason: str, now: datetime) -> None:
        """Make ``to_slot`` the window's active slot (a postponement to a reserve date)."""
        async with self._engine.begin() as conn:
            await conn.execute(slot_changes.insert().values(
                window_id=window_id, from_slot=from_slot, to_slot=to_slot, at=now,
                actor=actor, reason=reason))

    async def active_slots(self) -> dict[str, str]:
        """The active slot of every window that was moved, by window id."""
        c = slot_changes.c
        latest = select(c.window_id, func.max(c.id).label("id")).group_by(c.window_id).subquery()
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(c.window_id, c.to_slot).join(latest, c.id == latest.c.id))
            return {window_id: slot for window_id, slot in rows}

    async def notice(self, window_id: str, slot: str, phase: str) -> NoticeRecord | None:
        async with self._engine.connect() as conn:
            return await self._notice(conn, window_id, slot, phase)

    async def notices_of(self, window_id: str) -> list[NoticeRecord]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(notices).where(notices.c.window_id == window_id).order_by(notices.c.id))
            return [NoticeRecord(**row._mapping) for row in rows]

    async def plan(self, notice_id: int, planned: Iterable[PlannedDelivery], now: datetime
                   ) -> int:
        """Add the deliveries not yet in the ledger; returns how many were new."""
        rows = [{"notice_id": notice_id, "contact_id": p.contact_id, "channel": p.channel,
                 "address": p.address, "state": DeliveryState.PENDING.value, "attempts": 0,
                 "next_attempt_at": now, "updated_at": now} for p in planned]
        added = 0
        async with self._engine.begin() as conn:
            for start in range(0, len(rows), _INSERT_CHUNK):
                result = await conn.execute(
                    self._insert_ignore(deliveries).returning(deliveries.c.id),
                    rows[start:start + _INSERT_CHUNK])
                added += len(result.all())
        return added

    async def claim(self, notice_id: int, channel: str, owner: str, now: datetime,
                    lease_until: datetime, limit: int) -> list[Claimed]:
        """Take up to ``limit`` deliveries whose lease has expired, or that are due."""
        d = deliveries.c
        expired = (d.state == DeliveryState.SENDING.value, d.lease_expires_at < now,
                   d.lease_expires_at)
        due = (d.state == DeliveryState.PENDING.value, d.next_attempt_at <= now,
               d.next_attempt_at)
        claimed: list[Claimed] = []
        async with self._engine.begin() as conn:
            for state_is, time_reached, order in (expired, due):
                if len(claimed) >= limit:
                    break
                # Each query walks one index in time order, so LIMIT stops it early.
                eligible = (select(d.id)
                            .where(d.notice_id == notice_id, d.channel == channel, state_is,
                                   time_reached)
                            .order_by(order).limit(limit - len(claimed))
                            .with_for_update(skip_locked=True))
                statement = (
                    update(deliveries).where(d.id.in_(eligible.scalar_subquery()))
                    .values(state=DeliveryState.SENDING.value, lease_owner=owner,
                            lease_expires_at=lease_until, attempts=d.attempts + 1,
                            updated_at=now)
                    .returning(d.id, d.contact_id, d.channel, d.address, d.attempts))
                claimed.extend(Claimed(*row) for row in await conn.execute(statement))
        return sorted(claimed, key=lambda c: c.id)

    async def record(self, owner: str, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Write outcomes of deliveries this owner holds, in one transaction."""
        if not outcomes:
            return
        d = deliveries.c
        statement = (
            update(deliveries)
            .where(d.id == bindparam("b_id"), d.lease_owner == bindparam("b_owner"))
            .values(state=bindparam("b_state"), lease_owner=None, lease_expires_at=None,
                    next_attempt_at=func.coalesce(bindparam("b_next", type_=d.next_attempt_at.type),
                                                  d.next_attempt_at),
                    error_code=bindparam("b_code"), last_error=bindparam("b_error"),
                    provider_ref=func.coalesce(bindparam("b_ref", type_=d.provider_ref.type),
                                               d.provider_ref),
                    sent_at=func.coalesce(bindparam("b_sent", type_=d.sent_at.type), d.sent_at),
                    updated_at=now)
        )
        params = [{"b_id": o.delivery_id, "b_owner": owner, "b_state": o.state.value,
                   "b_next": o.next_attempt_at, "b_code": o.error_code, "b_error": o.last_error,
                   "b_ref": o.provider_ref, "b_sent": o.sent_at} for o in outcomes]
        async with self._engine.begin() as conn:
            await conn.execute(statement, params)

    async def release(self, owner: str, delivery_ids: Sequence[int], now: datetime) -> None:
        """Give back claimed deliveries that were not started (a clean stop)."""
        if not delivery_ids:
            return
        d = deliveries.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(deliveries)
                .where(d.id.in_(list(delivery_ids)), d.lease_owner == owner,
                       d.state == DeliveryState.SENDING.value)
                .values(state=DeliveryState.PENDING.value, lease_owner=None,
                        lease_expires_at=None, attempts=d.attempts - 1, updated_at=now))

    async def submitted(self, notice_id: int, channel: str) -> list[tuple[Claimed, str]]:
        """Deliveries the provider has yet to confirm, with the provider's reference."""
        d = deliveries.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(d.id, d.contact_id, d.channel, d.address, d.attempts, d.provider_ref)
                .where(d.notice_id == notice_id, d.channel == channel,
                       d.state == DeliveryState.SUBMITTED.value))
            return [(Claimed(*row[:5]), row[5] or "") for row in rows]

    async def settle(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Record how submitted deliveries ended: delivered, failed, or due again (pending
        from ``next_attempt_at``)."""
        d = deliveries.c
        async with self._engine.begin() as conn:
            for outcome in outcomes:
                values = {"state": outcome.state.value, "error_code": outcome.error_code,
                          "last_error": outcome.last_error, "updated_at": now}
                if outcome.next_attempt_at is not None:
                    values["next_attempt_at"] = outcome.next_attempt_at
                await conn.execute(
                    update(deliveries)
                    .where(d.id == outcome.delivery_id,
                           d.state == DeliveryState.SUBMITTED.value)
                    .values(values))

    async def counts(self, notice_id: int) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, state)."""
        d = deliveries.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(d.channel, d.state, func.count()).where(d.notice_id == notice_id)
                .group_by(d.channel, d.state))
            return {(channel, state): count for channel, state, count in rows}

    async def next_wakeup(self, notice_id: int, channel: str) -> datetime | None:
        """When the next not-yet-final delivery of the channel becomes claimable, if any."""
        d = deliveries.c
        pending = select(func.min(d.next_attempt_at)).where(
            d.notice_id == notice_id, d.channel == channel,
            d.state == DeliveryState.PENDING.value)
        leased = select(func.min(d.lease_expires_at)).where(
            d.notice_id == notice_id, d.channel == channel,
            d.state == DeliveryState.SENDING.value)
        async with self._engine.connect() as conn:
            times = [await conn.scalar(pending), await conn.scalar(leased)]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    async def deliveries_of(self, notice_id: int, states: Iterable[str] | None = None
                            ) -> list[DeliveryRecord]:
        d = deliveries.c
        query = select(d.id, d.notice_id, d.contact_id, d.channel, d.address, d.state,
                       d.attempts, d.error_code, d.last_error, d.provider_ref, d.sent_at
                       ).where(d.notice_id == notice_id)
        if states is not None:
            query = query.where(d.state.in_(list(states)))
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.order_by(d.id))
            return [DeliveryRecord(*row) for row in rows]

    async def requeue(self, notice_id: int, states: Iterable[str], now: datetime) -> int:
        """Make deliveries in ``states`` due again, with a fresh count of attempts."""
        d = deliveries.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(deliveries)
                .where(d.notice_id == notice_id, d.state.in_(list(states)))
                .values(state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=now,
                        updated_at=now))
            await conn.execute(update(notices).where(notices.c.id == notice_id)
                               .values(state=NoticeState.SENDING.value, finished_at=None))
        return result.rowcount

    async def finish_notice(self, notice_id: int, state: NoticeState, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(notices).where(notices.c.id == notice_id)
                               .values(state=state.value, finished_at=now))

    async def audit(self, actor: str, action: str, window_id: str, detail: dict[str, Any],
                    now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(audit_log.insert().values(
                at=now, actor=actor, action=action, window_id=window_id,
                detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)))

    async def audit_entries(self, window_id: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if window_id is not None:
            query = query.where(audit_log.c.window_id == window_id)
        async with self._engine.connect() as conn:
            return [{**row._mapping, "detail": json.loads(row.detail)}
                    for row in await conn.execute(query)]

    def _insert_ignore(self, table: Any) -> Any:
        dialect = postgresql if self._postgres else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    @staticmethod
    async def _notice(conn: AsyncConnection, window_id: str, slot: str, phase: str
                      ) -> NoticeRecord | None:
        row = (await conn.execute(select(notices).where(
            notices.c.window_id == window_id, notices.c.slot == slot,
            notices.c.phase == phase))).first()
        return NoticeRecord(**row._mapping) if row else None


async def _create_schema(engine: AsyncEngine) -> None:
    """Create missing tables while holding a database-wide lock, so that processes opening a
    new ledger together (two daemons, a daemon and a `send`) do not both create a table."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        await conn.run_sync(metadata.create_all)


_SCHEMA_LOCK = 0x64697370  # "disp": any constant shared by every dispatcher process


async def _use_wal(engine: AsyncEngine) -> None:
    """Put the SQLite file in WAL mode (it stays so). Switching needs the file to itself and
    SQLite answers "locked" at once, without waiting, while another process holds it (a
    second daemon creating the same new ledger): try again for a while."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


WAL_SWITCH_SECONDS = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
