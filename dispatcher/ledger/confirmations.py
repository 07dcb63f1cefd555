"""The contacts' confirmations of the notices they read (the first of each (notice,
contact) kept, the rest harmless), the addresses suppressed for what came back, and the
contacts rows the table in force set aside as invalid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select

from dispatcher.errors import Problem
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import Confirmation, Suppression
from dispatcher.ledger.tables import confirmations, set_aside_rows, suppressions
from dispatcher.table import SetAside


class ConfirmationLog(EngineUser):

    async def confirm(self, confirmation: Confirmation) -> Confirmation:
        """Record ``confirmation`` unless the contact confirmed the notice before: the one
        that stands (this one, or the earlier)."""
        async with self._begin() as conn:
            await conn.execute(self._insert_ignore(confirmations).values(
                notice_id=confirmation.notice_id, contact_id=confirmation.contact_id,
                delivery_id=confirmation.delivery_id, via=confirmation.via,
                actor=confirmation.actor, at=confirmation.at))
        standing = await self.confirmations_of(confirmation.notice_id,
                                               [confirmation.contact_id])
        return standing[confirmation.contact_id]

    async def confirmations_of(self, notice_id: int, contact_ids: list[str] | None = None
                               ) -> dict[str, Confirmation]:
        """The notice's confirmations by contact (of ``contact_ids``, or all)."""
        c = confirmations.c
        query = select(c.notice_id, c.contact_id, c.via, c.actor, c.at, c.delivery_id).where(
            c.notice_id == notice_id)
        if contact_ids is not None:
            query = query.where(c.contact_id.in_(contact_ids))
        async with self._connect() as conn:
            return {row.contact_id: Confirmation(*row) for row in await conn.execute(query)}

    async def confirmed_count(self, notice_id: int) -> int:
        c = confirmations.c
        async with self._connect() as conn:
            count = await conn.scalar(select(func.count()).where(c.notice_id == notice_id))
            return int(count or 0)



class SuppressionList(EngineUser):
    """The addresses not to be sent to again."""

    async def suppress(self, entries: Sequence[Suppression]) -> int:
        """Add each entry not there yet (the first reason stands); how many were new."""
        if not entries:
            return 0
        async with self._begin() as conn:
            result = await conn.execute(
                self._insert_ignore(suppressions).returning(suppressions.c.id),
                [{"channel": e.channel, "address": e.address, "reason": e.reason,
                  "detail": e.detail, "source": e.source, "at": e.at} for e in entries])
            return len(result.fetchall())

    async def suppressions(self) -> list[Suppression]:
        c = suppressions.c
        async with self._connect() as conn:
            rows = await conn.execute(select(c.channel, c.address, c.reason, c.detail,
                                             c.source, c.at).order_by(c.at, c.id))
            return [Suppression(*row) for row in rows]

    async def suppressed(self) -> dict[str, set[str]]:
        """The suppressed addresses by channel."""
        found: dict[str, set[str]] = {}
        for entry in await self.suppressions():
            found.setdefault(entry.channel, set()).add(entry.address)
        return found

    async def unsuppress(self, channel: str, address: str) -> bool:
        """Take the address off the list; False if it was not on it."""
        c = suppressions.c
        async with self._begin() as conn:
            result = await conn.execute(delete(suppressions).where(
                c.channel == channel, c.address == address))
            return bool(result.rowcount)


class SetAsideList(EngineUser):
    """The contacts rows set aside as invalid by the table in force, as its daemon wrote
    them when it took the table in."""

    async def replace_set_aside(self, rows: Sequence[SetAside], at: datetime) -> None:
        """The rows of the table just taken in, in place of those of the last."""
        async with self._begin() as conn:
            await conn.execute(delete(set_aside_rows))
            if rows:  # cut to the columns' sizes: a bad row's id may be any length
                await conn.execute(insert(set_aside_rows), [
                    {"source": r.source[:1000], "contact_id": r.id[:200],
                     "merchant": r.merchant, "name": r.name, "tags": " ".join(sorted(r.tags)),
                     "typed": json.dumps(dict(r.typed), ensure_ascii=False),
                     "reason": r.reason, "at": at} for r in rows])

    async def set_aside(self) -> list[SetAside]:
        """The rows as last written, each with its reason as its one problem, in the
        order of their files and lines."""
        c = set_aside_rows.c
        async with self._connect() as conn:
            rows = await conn.execute(select(c.source, c.contact_id, c.merchant, c.name,
                                             c.tags, c.typed, c.reason))
            found = [SetAside(source, contact, merchant, name, frozenset(tags.split()),
                              tuple(json.loads(typed).items()), (Problem(source, reason),))
                     for source, contact, merchant, name, tags, typed, reason in rows]
        return sorted(found, key=_file_and_line)


def _file_and_line(row: SetAside) -> tuple[str, int]:
    """``contacts/a.csv:10`` after ``:9``."""
    file, _, line = row.source.rpartition(":")
    return (file, int(line)) if line.isdigit() else (row.source, 0)
