"""Who a notice reached, read from the ledger a few hundred contacts at a time: the ids
not reached (by the notice's deliveries; of a notice that asks to confirm, by a
confirmation), and the rows for some of them, with what the escalations did."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.ledger import DeliveryRecord, Ledger, NoticeRecord
from dispatcher.receipts.reach import Unreached, not_reached, unreached
from dispatcher.table import STEP_MARK, Contact


@dataclass(frozen=True)
class ReachReads:
    ledger: Ledger

    async def missing(self, record: NoticeRecord, asks: bool, audience: Iterable[str],
                      gone: Iterable[str], sent_before: datetime) -> list[str]:
        """The notice's contacts not reached (``asks``: not confirmed): the audience's in
        its order, then those gone from it since."""
        if asks:
            proven = set(await self.ledger.confirmations_of(record.id))
        else:
            proven = await self.ledger.contacts_reached(record.id, sent_before)
        return not_reached(audience, gone, proven)

    async def rows(self, record: NoticeRecord, asks: bool, contacts: Sequence[Contact],
                   ids: list[str] | None, grace: timedelta, now: datetime) -> list[Unreached]:
        """The rows of ``ids`` (of whom ``contacts`` are still in the table); None: of the
        whole audience ``contacts``, every delivery read at once."""
        deliveries = await self._deliveries(record.id, ids)
        steps = [(escalation.phase, delivery)
                 for escalation in await self.escalations(record)
                 for delivery in await self._deliveries(escalation.id, ids)]
        confirmed = set(await self.ledger.confirmations_of(record.id, ids)) if asks else None
        return unreached(contacts, deliveries, grace, now, steps, confirmed)

    async def _deliveries(self, notice_id: int, ids: list[str] | None
                          ) -> list[DeliveryRecord]:
        if ids is None:
            return await self.ledger.deliveries_of(notice_id)
        return await self.ledger.deliveries_of_contacts(notice_id, ids)

    async def escalations(self, record: NoticeRecord) -> list[NoticeRecord]:
        """The escalations of the notice (``start+sms``, ``start+voice``), oldest first."""
        prefix = f"{record.phase}{STEP_MARK}"
        return [n for n in await self.ledger.notices_of(record.window_id)
                if n.slot == record.slot and n.phase.startswith(prefix)]
