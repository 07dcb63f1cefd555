"""What the ledger says about a notice's deliveries: counts by channel and state, what
waits and why, who was reached, and the rows themselves (in pages, for 100,000)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select

from dispatcher.ledger.deliveries import DELIVERY_COLUMNS, released_channels
from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import DeliveryRecord
from dispatcher.ledger.states import FINAL_STATES, DeliveryState
from dispatcher.ledger.tables import deliveries


class DeliveryReads(EngineUser):
    """The read-only queries about deliveries; mixed into ``Ledger`` like the others."""

    async def counts(self, notice_id: int | None) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, state): of one notice, or (None) of them all."""
        d = deliveries.c
        query = select(d.channel, d.state, func.count())
        if notice_id is not None:
            query = query.where(d.notice_id == notice_id)
        async with self._connect() as conn:
            rows = await conn.execute(query.group_by(d.channel, d.state))
            return {(channel, state): count for channel, state, count in rows}

    async def waiting(self, notice_id: int) -> list[tuple[str, str, str, int]]:
        """Pending deliveries that an attempt left an error on, by (channel, error code):
        each with its last error and how many wait (a refused login, a 4xx, an outage)."""
        d = deliveries.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(d.channel, d.error_code, func.max(d.last_error), func.count())
                .where(d.notice_id == notice_id, d.state == DeliveryState.PENDING.value,
                       d.error_code.is_not(None))
                .group_by(d.channel, d.error_code).order_by(d.channel, d.error_code))
            return [(channel, code, error or "", count) for channel, code, error, count in rows]

    async def deliveries_of(self, notice_id: int, states: Iterable[str] | None = None,
                            limit: int | None = None) -> list[DeliveryRecord]:
        """The notice's deliveries (in ``states``), the first ``limit`` of them."""
        d = deliveries.c
        query = select(*DELIVERY_COLUMNS).where(d.notice_id == notice_id)
        if states is not None:
            query = query.where(d.state.in_(list(states)))
        async with self._connect() as conn:
            rows = await conn.execute(query.order_by(d.id).limit(limit))
            return [DeliveryRecord(*row) for row in rows]

    async def contacts_named(self, notice_id: int) -> list[str]:
        """Every contact with a delivery of the notice, once each."""
        d = deliveries.c
        async with self._connect() as conn:
            rows = await conn.execute(select(d.contact_id).where(d.notice_id == notice_id)
                                      .group_by(d.contact_id))
            return [contact for contact, in rows]

    async def contacts_reached(self, notice_id: int, sent_before: datetime) -> set[str]:
        """The contacts a delivery of the notice reached: ``delivered``, or ``sent`` at or
        before ``sent_before``. Only those rows are read: a page about 100,000 contacts
        does not read 300,000 deliveries."""
        d = deliveries.c
        reached = or_(d.state == DeliveryState.DELIVERED.value,
                      (d.state == DeliveryState.SENT.value) & (d.sent_at <= sent_before))
        async with self._connect() as conn:
            rows = await conn.execute(select(d.contact_id).distinct()
                                      .where(d.notice_id == notice_id, reached))
            return {contact for contact, in rows}

    async def contacts_waiting(self, notice_id: int, sent_after: datetime) -> set[str]:
        """The contacts a delivery of the notice was ``sent`` to after ``sent_after``, with
        no report yet: within the grace period, it may still arrive (only those rows)."""
        d = deliveries.c
        async with self._connect() as conn:
            rows = await conn.execute(select(d.contact_id).distinct().where(
                d.notice_id == notice_id, d.state == DeliveryState.SENT.value,
                d.sent_at > sent_after))
            return {contact for contact, in rows}

    async def deliveries_of_contacts(self, notice_id: int, contact_ids: Iterable[str]
                                     ) -> list[DeliveryRecord]:
        """The notice's deliveries to these contacts."""
        wanted = sorted(set(contact_ids))
        d = deliveries.c
        found: list[DeliveryRecord] = []
        async with self._connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = await conn.execute(
                    select(*DELIVERY_COLUMNS).where(
                        d.notice_id == notice_id, d.contact_id.in_(wanted[start:start + 500]))
                    .order_by(d.id))
                found += [DeliveryRecord(*row) for row in rows]
        return found

    async def planned(self, notice_id: int, now: datetime
                      ) -> tuple[dict[str, set[str]], int, int]:
        """The contacts that have a delivery, by channel; how many deliveries of channels
        released by ``now`` are not yet final; and how many wait for their channel's
        release: what tells whether the notice is done, or partial."""
        d = deliveries.c
        final = [s.value for s in FINAL_STATES]
        released = released_channels(notice_id, now)
        async with self._connect() as conn:
            rows = await conn.execute(select(d.channel, d.contact_id)
                                      .where(d.notice_id == notice_id))
            contacts: dict[str, set[str]] = {}
            for channel, contact_id in rows:
                contacts.setdefault(channel, set()).add(contact_id)
            unfinished = await conn.scalar(select(func.count()).where(
                d.notice_id == notice_id, d.state.not_in(final), d.channel.in_(released)))
            waiting = await conn.scalar(select(func.count()).where(
                d.notice_id == notice_id, d.state.not_in(final), d.channel.not_in(released)))
        return contacts, int(unfinished or 0), int(waiting or 0)
