"""The contacts' confirmations of the notices they read: the first of each (notice,
contact) kept, the rest harmless."""

from __future__ import annotations

from sqlalchemy import func, select

from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import Confirmation
from dispatcher.ledger.tables import confirmations


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

