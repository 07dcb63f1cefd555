"""Notices, the outages they rode out, the windows' active slots and the audit log, as the
ledger records them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.lifecycle import notice_row
from dispatcher.ledger.records import NoticeFailure, NoticeRecord, OutageRecord
from dispatcher.ledger.states import BEGUN_STATES, NoticeState
from dispatcher.ledger.tables import (
    audit_log,
    notice_failures,
    notice_releases,
    notices,
    outages,
    slot_changes,
)
from dispatcher.table import PLANNED, STEP_MARK, notice_key


class NoticeQueries(EngineUser):
    """Notices: opened once per key, finished or missed; slot moves; the audit log."""

    async def notice_states(self) -> dict[str, NoticeState]:
        """Every notice's state, by its key (``window/slot/phase``)."""
        n = notices.c
        async with self._connect() as conn:
            rows = await conn.execute(select(n.window_id, n.slot, n.phase, n.state))
            return {notice_key(w, s, p): NoticeState(state) for w, s, p, state in rows}

    async def base_of(self, record: NoticeRecord) -> NoticeRecord:
        """The notice an escalation (``start+voice``) escalates; any other, itself. A
        contact confirms that one, whichever delivery's link or call they answered."""
        base, escalated, _ = record.phase.partition(STEP_MARK)
        if not escalated:
            return record
        return await self.notice(record.window_id, record.slot, base) or record

    async def notice_starts(self) -> dict[str, datetime]:
        """When each notice that went or is going out was released on every one of its
        channels, by its key: what its escalations are timed from (a notice sent by hand
        on some channels has not started for them)."""
        n, r = notices.c, notice_releases.c
        begun = [state.value for state in BEGUN_STATES]
        async with self._connect() as conn:
            rows = await conn.execute(
                select(n.window_id, n.slot, n.phase, func.max(r.release_at))
                .join(notice_releases, r.notice_id == n.id).where(n.state.in_(begun))
                .group_by(n.id, n.window_id, n.slot, n.phase)
                .having(func.count(r.release_at) == func.count()))
            return {notice_key(w, s, p): at for w, s, p, at in rows}

    async def slot_moves(self) -> dict[str, dict[str, str]]:
        """Every postponement, by window id: the slot it left, and the one it moved to."""
        c = slot_changes.c
        moves: dict[str, dict[str, str]] = {}
        async with self._connect() as conn:
            for window_id, left, to in await conn.execute(
                    select(c.window_id, c.from_slot, c.to_slot).order_by(c.id)):
                moves.setdefault(window_id, {})[left] = to
        return moves

    async def move_reason(self, window_id: str, left: str) -> str | None:
        """Why the window left slot ``left``, as the operator said it; None if it did not."""
        c = slot_changes.c
        async with self._connect() as conn:
            return await conn.scalar(select(c.reason).where(c.window_id == window_id,
                                                            c.from_slot == left))

    async def active_slots(self) -> dict[str, str]:
        """The active slot of every window that was moved, by window id."""
        c = slot_changes.c
        latest = select(c.window_id, func.max(c.id).label("id")).group_by(c.window_id).subquery()
        async with self._connect() as conn:
            rows = await conn.execute(
                select(c.window_id, c.to_slot).join(latest, c.id == latest.c.id))
            return {window_id: slot for window_id, slot in rows}

    async def notice(self, window_id: str, slot: str, phase: str) -> NoticeRecord | None:
        async with self._connect() as conn:
            return await notice_row(conn, window_id, slot, phase)

    async def notices_of(self, window_id: str) -> list[NoticeRecord]:
        async with self._connect() as conn:
            rows = await conn.execute(
                select(notices).where(notices.c.window_id == window_id).order_by(notices.c.id))
            return [NoticeRecord(**row._mapping) for row in rows]

    async def record_outage(self, outage: OutageRecord) -> None:
        async with self._begin() as conn:
            await conn.execute(outages.insert().values(**vars(outage)))

    async def outage_totals(self) -> dict[str, tuple[int, int]]:
        """The provider outages ridden out, by channel: how many, and their probes."""
        c = outages.c
        async with self._connect() as conn:
            rows = await conn.execute(select(c.channel, func.count(), func.sum(c.probes))
                                      .group_by(c.channel))
            return {channel: (count, int(probes or 0)) for channel, count, probes in rows}

    async def outages_of(self, notice_id: int) -> list[OutageRecord]:
        """The provider outages a notice rode out, in order."""
        c = outages.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(c.notice_id, c.channel, c.began_at, c.ended_at, c.waiting, c.probes,
                       c.error).where(c.notice_id == notice_id).order_by(c.id))
            return [OutageRecord(*row) for row in rows]

    async def record_failure(self, window_id: str, slot: str, phase: str, reason: str,
                             fix: str, now: datetime) -> int:
        """The daemon could not start or send a notice: one more failure in a row, with its
        reason and what to do. Returns the failures in a row."""
        f = notice_failures.c
        dialect = postgresql if self._postgres else sqlite
        upsert = dialect.insert(notice_failures).values(
            window_id=window_id, slot=slot, phase=phase, since=now, at=now, failures=1,
            reason=reason, fix=fix)
        upsert = upsert.on_conflict_do_update(
            index_elements=[f.window_id, f.slot, f.phase],
            set_={"at": now, "failures": f.failures + 1, "reason": reason, "fix": fix})
        async with self._begin() as conn:
            await conn.execute(upsert)
            return int(await conn.scalar(select(f.failures).where(
                f.window_id == window_id, f.slot == slot, f.phase == phase)) or 0)

    async def clear_failure(self, window_id: str, slot: str, phase: str) -> None:
        """The daemon's send of the notice went through: it is failing no more."""
        f = notice_failures.c
        async with self._begin() as conn:
            await conn.execute(delete(notice_failures).where(
                f.window_id == window_id, f.slot == slot, f.phase == phase))

    async def notice_failures(self, window_id: str | None = None) -> dict[str, NoticeFailure]:
        """The notices the daemon could not start or send, by key (of every window, or of
        ``window_id``), whatever became of them since (a view leaves out those done)."""
        query = select(notice_failures)
        if window_id is not None:
            query = query.where(notice_failures.c.window_id == window_id)
        async with self._connect() as conn:
            failures = [NoticeFailure(**row._mapping) for row in await conn.execute(query)]
        return {notice_key(f.window_id, f.slot, f.phase): f for f in failures}

    async def audit(self, actor: str, action: str, window_id: str, detail: dict[str, Any],
                    now: datetime) -> None:
        async with self._begin() as conn:
            await conn.execute(audit_log.insert().values(
                at=now, actor=actor, action=action, window_id=window_id,
                detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)))

    async def audit_entries(self, window_id: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if window_id is not None:
            query = query.where(audit_log.c.window_id == window_id)
        async with self._connect() as conn:
            return [{**row._mapping, "detail": json.loads(row.detail)}
                    for row in await conn.execute(query)]

    async def last_logins(self) -> dict[str, datetime]:
        """Each console user's last login, from the audit log."""
        a = audit_log.c
        async with self._connect() as conn:
            rows = await conn.execute(select(a.actor, func.max(a.at))
                                      .where(a.action == "login").group_by(a.actor))
            return {actor: at for actor, at in rows}


def failing(failures: Mapping[str, NoticeFailure], states: Mapping[str, NoticeState],
            active_slots: Mapping[str, str]) -> dict[str, NoticeFailure]:
    """Of the notices whose last send by a daemon failed (by key), those that may still go:
    not done, not missed (their time passed), of their window's active slot."""
    return {key: f for key, f in failures.items()
            if states.get(key) not in (NoticeState.DONE, NoticeState.MISSED)
            and f.slot == active_slots.get(f.window_id, PLANNED)}
