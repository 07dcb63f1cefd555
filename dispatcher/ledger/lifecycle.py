"""Every write of a notice's state, each compare-and-set against ``LIFECYCLE``: a notice
opened with its release times and deliveries in one transaction, settled, missed, or
reopened by an operator's retry. A release time only ever moves earlier; the claim hands
out nothing before it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, String, exists, func, literal, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.errors import LedgerError, Problem, StaleError
from dispatcher.ledger.deliveries import released_channels
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import NewDelivery, NoticeRecord, Opening
from dispatcher.ledger.states import (
    FINAL_STATES,
    Cause,
    DeliveryState,
    LifecycleError,
    NoticeState,
    allowed_from,
    check_move,
    opened_state,
)
from dispatcher.ledger.tables import deliveries, notice_releases, notices, slot_changes
from dispatcher.table import PLANNED

_INSERT_CHUNK = 50_000
_PLANNED = ("contact_id", "channel", "address")
_PLANNED_COLUMNS = ("notice_id", *_PLANNED, "state", "attempts", "next_attempt_at",
                    "updated_at")

Releases = dict[str, datetime | None]


class NoticeLifecycle(EngineUser):
    """Notices opened, settled, missed and retried: the only writers of their state."""

    async def open_notice(self, opening: Opening, new: Iterable[NewDelivery], now: datetime
                          ) -> tuple[NoticeRecord, bool, int]:
        """The notice for (window, slot, phase), created in its real state if new, with its
        channels' release times and the deliveries not yet planned, in one transaction
        serialised per window. Returns its record, whether this call created it, and how
        many deliveries were new."""
        new = list(new)
        async with self._begin_serial(opening.window_id) as conn:
            before = await notice_row(conn, opening.window_id, opening.slot, opening.phase,
                                      lock=True)
            if before is None:
                record = await self._create(conn, opening, now)
            elif before.state == NoticeState.MISSED and opening.cause is not Cause.OPERATOR:
                return before, False, 0  # too late: nothing of it is released or planned
            else:
                record = before
            await self._release(conn, record.id, opening.releases,
                                opening.cause is Cause.SCHEDULE)
            added = await self._plan(conn, record.id, new, now)
            if before is not None:
                record = await self._reopen(conn, before, opening.cause, added, now)
        return record, before is None, added

    async def move_window(self, window_id: str, from_slot: str, to_slot: str, actor: str,
                          reason: str, now: datetime, notice: Opening | None = None) -> None:
        """Make ``to_slot`` the window's active slot (a postponement to a reserve date), if
        ``from_slot`` still is: compare and set. StaleError if the window moved since.
        ``notice``: its postponed notice, created in the same transaction (a sender that
        dies before sending it leaves it for the daemon to resume, never lost)."""
        c = slot_changes.c
        try:
            async with self._begin_serial(window_id) as conn:
                current = await conn.scalar(select(c.to_slot).where(c.window_id == window_id)
                                            .order_by(c.id.desc()).limit(1))
                if (current or PLANNED) != from_slot:
                    raise _moved_since(window_id, from_slot, current or PLANNED)
                await conn.execute(slot_changes.insert().values(
                    window_id=window_id, from_slot=from_slot, to_slot=to_slot, at=now,
                    actor=actor, reason=reason))
                if notice is not None and await notice_row(
                        conn, notice.window_id, notice.slot, notice.phase) is None:
                    record = await self._create(conn, notice, now)
                    await self._release(conn, record.id, notice.releases)
        except IntegrityError:  # another postponement of the same view got there first
            raise _moved_since(window_id, from_slot, None) from None

    async def releases_of(self, notice_id: int) -> Releases:
        """When each channel of the notice may go (None: not released yet)."""
        async with self._connect() as conn:
            return await _releases(conn, notice_id)

    async def settle_notice(self, notice_id: int, state: NoticeState, now: datetime) -> bool:
        """Record the notice ``done`` (or ``partial``: some channels wait for its time),
        provided none of its deliveries of a released channel is unfinished (a report may
        have asked for another attempt since it was looked at). False if one is, or it
        was missed meanwhile."""
        n, d = notices.c, deliveries.c
        unfinished = exists().where(
            d.notice_id == notice_id, d.state.not_in([s.value for s in FINAL_STATES]),
            d.channel.in_(released_channels(notice_id, now)))
        allowed = [s.value for s in allowed_from(Cause.SETTLED, state)]
        async with self._begin() as conn:
            # the row first (PostgreSQL: locked, so a report's reopening waits or is seen
            # by the next statement, which reads afresh)
            current = await conn.scalar(select(n.state).where(n.id == notice_id)
                                        .with_for_update())
            if current is None:
                return False
            if current not in allowed and current in (NoticeState.MISSED, NoticeState.DONE):
                return False  # missed meanwhile, or another sender found it done
            check_move(Cause.SETTLED, NoticeState(current), state)  # raises: a bug
            moved = await conn.execute(
                update(notices).where(n.id == notice_id, n.state == current, ~unfinished)
                .values(state=state.value, finished_at=now))
            return bool(moved.rowcount)

    async def record_missed(self, window_id: str, slot: str, phase: str, now: datetime
                            ) -> bool:
        """Record that a notice (or the rest of a partly sent one) was too late to send;
        False if there was nothing to record."""
        n = notices.c
        async with self._begin_serial(window_id) as conn:
            before = await notice_row(conn, window_id, slot, phase, lock=True)
            if before is None:
                await conn.execute(notices.insert().values(
                    window_id=window_id, slot=slot, phase=phase,
                    state=NoticeState.MISSED.value, triggered_by="schedule",
                    created_at=now, finished_at=now))
                return True
            if before.state != NoticeState.PARTIAL:
                return False
            check_move(Cause.MISSED, NoticeState.PARTIAL, NoticeState.MISSED)
            moved = await conn.execute(update(notices).where(
                n.id == before.id, n.state == NoticeState.PARTIAL.value)
                .values(state=NoticeState.MISSED.value, finished_at=now))
            return bool(moved.rowcount)

    async def requeue(self, notice_id: int, states: Iterable[str], now: datetime) -> int:
        """An operator's retry: make deliveries in ``states`` due again with a fresh count
        of attempts, and the notice ``sending`` (its channels not released still wait for
        its time: the claim holds them back)."""
        d = deliveries.c
        window_id = await self._window_of(notice_id)
        async with self._begin_serial(window_id) as conn:
            await conn.execute(select(notices.c.id).where(notices.c.id == notice_id)
                               .with_for_update())  # what a report would reopen waits
            result = await conn.execute(
                update(deliveries)
                .where(d.notice_id == notice_id, d.state.in_(list(states)))
                .values(state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=now,
                        updated_at=now))
            if result.rowcount:
                before = await conn.execute(select(notices).where(notices.c.id == notice_id))
                record = NoticeRecord(**before.one()._mapping)
                await self._reopen(conn, record, Cause.OPERATOR, result.rowcount, now)
        return result.rowcount

    async def _window_of(self, notice_id: int) -> str:
        async with self._connect() as conn:
            window_id = await conn.scalar(select(notices.c.window_id)
                                          .where(notices.c.id == notice_id))
        if window_id is None:
            raise LedgerError(f"no notice {notice_id} in the ledger")
        return str(window_id)

    async def _create(self, conn: AsyncConnection, opening: Opening, now: datetime
                      ) -> NoticeRecord:
        state = opened_state(None, opening.cause, 0)
        await conn.execute(notices.insert().values(
            window_id=opening.window_id, slot=opening.slot, phase=opening.phase,
            state=state.value, triggered_by=opening.triggered_by, created_at=now,
            sending_since=now))
        record = await notice_row(conn, opening.window_id, opening.slot, opening.phase)
        assert record is not None
        return record

    @staticmethod
    async def _release(conn: AsyncConnection, notice_id: int,
                       wanted: Mapping[str, datetime | None], scheduled: bool = False
                       ) -> None:
        """Write the release times ``wanted`` where they are earlier than (or missing from)
        the ledger's. The schedule releasing
        every channel of the notice (``scheduled``) releases too those the table no longer
        gives it (they would hold its escalations back for ever)."""
        r = notice_releases.c
        current = await _releases(conn, notice_id)
        times = [at for at in wanted.values() if at is not None]
        if scheduled and times and len(times) == len(wanted):
            for channel in [c for c, at in current.items() if at is None and c not in wanted]:
                await conn.execute(update(notice_releases).where(
                    r.notice_id == notice_id, r.channel == channel).values(release_at=min(times)))
        for channel, at in wanted.items():
            if channel not in current:
                await conn.execute(notice_releases.insert().values(
                    notice_id=notice_id, channel=channel, release_at=at))
            else:
                earlier = at is not None and (current[channel] is None
                                              or at < current[channel])  # type: ignore[operator]
                if not earlier:
                    continue
                await conn.execute(update(notice_releases).where(
                    r.notice_id == notice_id, r.channel == channel).values(release_at=at))

    async def _reopen(self, conn: AsyncConnection, before: NoticeRecord, cause: Cause,
                      added: int, now: datetime) -> NoticeRecord:
        """Move a notice planned again to its state by ``LIFECYCLE`` (compare and set)."""
        was = NoticeState(before.state)
        state = opened_state(was, cause, added)
        if state is was:  # nothing to write
            return before
        n = notices.c
        moved = await conn.execute(update(notices).where(n.id == before.id,
                                                         n.state == before.state)
                                   .values(state=state.value, finished_at=None,
                                           sending_since=now))
        if not moved.rowcount:  # a serialised transaction: nobody else writes it now
            raise LifecycleError(f"notice {before.id} changed under a serialised write")
        after = await notice_row(conn, before.window_id, before.slot, before.phase)
        assert after is not None
        return after

    async def _plan(self, conn: AsyncConnection, notice_id: int, new: list[NewDelivery],
                    now: datetime) -> int:
        """Add the deliveries not yet in the ledger; returns how many were new."""
        if not new:
            return 0
        planned = select(func.count()).where(deliveries.c.notice_id == notice_id)
        before = (await conn.execute(planned)).scalar_one()
        for start in range(0, len(new), _INSERT_CHUNK):
            await conn.execute(self._planning(notice_id, new[start:start + _INSERT_CHUNK], now))
        return int((await conn.execute(planned)).scalar_one()) - int(before)

    def _planning(self, notice_id: int, new: list[NewDelivery], now: datetime) -> Any:
        """One INSERT … SELECT of these deliveries (ignoring those already planned), the
        rows passed as one value: a JSON array read by ``json_each`` (SQLite), or three
        arrays ``unnest`` (PostgreSQL). The database does the rest without the event loop's
        thread: 300,000 rows bound one by one held it for 14 s (SQLAlchemy's conversions)
        or 5 s (the driver's)."""
        if self._postgres:
            rows = func.unnest(*(literal([getattr(p, name) for p in new], ARRAY(String))
                                 for name in _PLANNED)).table_valued(*_PLANNED).render_derived()
            picked: list[Any] = [rows.c[name] for name in _PLANNED]
            source = select(*_planned_values(notice_id, picked, now)).select_from(rows)
        else:
            each = func.json_each(literal(json.dumps(
                [[p.contact_id, p.channel, p.address] for p in new], ensure_ascii=False))
            ).table_valued("value")
            picked = [func.json_extract(each.c.value, f"$[{i}]") for i in range(3)]
            # "WHERE true": SQLite's grammar needs it before ON CONFLICT
            source = (select(*_planned_values(notice_id, picked, now)).select_from(each)
                      .where(true()))
        return self._insert_ignore(deliveries).from_select(_PLANNED_COLUMNS, source)


def _planned_values(notice_id: int, picked: list[Any], now: datetime) -> list[Any]:
    """A new delivery's values in ``_PLANNED_COLUMNS``' order, ``picked`` from the rows."""
    at = deliveries.c.next_attempt_at.type
    return [literal(notice_id), *picked, literal(DeliveryState.PENDING.value), literal(0),
            literal(now, at), literal(now, at)]


async def _releases(conn: AsyncConnection, notice_id: int) -> Releases:
    r = notice_releases.c
    rows = await conn.execute(select(r.channel, r.release_at).where(r.notice_id == notice_id))
    return {channel: at for channel, at in rows}


async def notice_row(conn: AsyncConnection, window_id: str, slot: str, phase: str,
                     lock: bool = False) -> NoticeRecord | None:
    """The notice's row; ``lock``: held until the transaction ends (PostgreSQL), so that a
    provider's report or a settling sender does not write its state under us."""
    query = select(notices).where(notices.c.window_id == window_id, notices.c.slot == slot,
                                  notices.c.phase == phase)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return NoticeRecord(**row._mapping) if row else None


def _moved_since(window_id: str, seen: str, current: str | None) -> StaleError:
    now_on = f"it is on {current} now" if current else "another postponement got there first"
    return StaleError([Problem("WINDOW", f"window {window_id} is no longer on {seen}: "
                                         f"{now_on}; look again")])
