"""The delivery queue: planned once per (notice, contact, channel), claimed under a lease,
recorded in groups, requeued for a retry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import Claimed, Outcome
from dispatcher.ledger.states import REPORTED_STATES, DeliveryState
from dispatcher.ledger.tables import deliveries, notice_releases

# A DeliveryRecord's columns, in its order.
DELIVERY_COLUMNS = tuple(deliveries.c[name] for name in (
    "id", "notice_id", "contact_id", "channel", "address", "state", "attempts", "error_code",
    "last_error", "provider_ref", "sent_at"))


def _record_statement() -> Any:
    """Outcomes written by their lease holder; built once (building it is not free, and it
    runs for every group of outcomes)."""
    d = deliveries.c
    # spelled out: an IN list would expand, which executemany cannot do
    reported = or_(*(d.state == state.value for state in REPORTED_STATES))
    return (
        update(deliveries)
        .where(d.id == bindparam("b_id"), d.lease_owner == bindparam("b_owner"),
               d.lease_epoch == bindparam("b_epoch"))
        .values(state=case((reported, d.state), else_=bindparam("b_state")),
                lease_owner=None, lease_expires_at=None,
                next_attempt_at=func.coalesce(bindparam("b_next", type_=d.next_attempt_at.type),
                                              d.next_attempt_at),
                error_code=bindparam("b_code"), last_error=bindparam("b_error"),
                provider_ref=func.coalesce(bindparam("b_ref", type_=d.provider_ref.type),
                                           d.provider_ref),
                sent_at=func.coalesce(bindparam("b_sent", type_=d.sent_at.type), d.sent_at),
                attempts=d.attempts - bindparam("b_uncount"),
                updated_at=bindparam("b_now", type_=d.updated_at.type))
    )


_RECORD = _record_statement()


class DeliveryQueue(EngineUser):
    """Deliveries: planned, claimed with a lease, recorded, released, settled, counted."""

    async def claim(self, notice_id: int, channel: str, owner: str, now: datetime,
                    lease_until: datetime, limit: int) -> list[Claimed]:
        """Take up to ``limit`` deliveries that are due, or whose holder's lease has expired
        (never one's own: an owner renews what it holds, and gives back what it lost).
        Nothing before the channel's release time (``notice_releases``), whoever asks and
        whatever state the notice is in."""
        d = deliveries.c
        expired = (d.state == DeliveryState.SENDING.value,
                   (d.lease_expires_at < now) & (d.lease_owner != owner), d.lease_expires_at)
        due = (d.state == DeliveryState.PENDING.value, d.next_attempt_at <= now,
               d.next_attempt_at)
        claimed: list[Claimed] = []
        async with self._begin() as conn:
            release = await conn.scalar(_release_of(notice_id, channel))
            if release is None or release > now:  # not the channel's time yet
                return claimed
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
                            lease_epoch=func.coalesce(d.lease_epoch, 0) + 1, updated_at=now)
                    .returning(d.id, d.contact_id, d.channel, d.address, d.attempts,
                               d.lease_epoch))
                claimed.extend(Claimed(*row) for row in await conn.execute(statement))
        return sorted(claimed, key=lambda c: c.id)

    async def renew(self, owner: str, notice_id: int, channel: str, now: datetime,
                    lease_until: datetime) -> int:
        """Extend the leases ``owner`` holds on the channel's deliveries (a holder renews
        while it works, so nobody takes them over); returns how many."""
        d = deliveries.c
        async with self._begin() as conn:
            result = await conn.execute(
                update(deliveries)
                .where(d.notice_id == notice_id, d.channel == channel, d.lease_owner == owner,
                       d.state == DeliveryState.SENDING.value)
                .values(lease_expires_at=lease_until, updated_at=now))
        return result.rowcount

    async def record(self, owner: str, outcomes: Sequence[Outcome], now: datetime) -> int:
        """Write outcomes of the claims this owner still holds, in one transaction; returns
        how many were written (an outcome of a claim taken over since is not). A provider's
        report that came in before the outcome (a fast status callback) keeps its state."""
        if not outcomes:
            return 0
        params = [{"b_id": o.delivery_id, "b_owner": owner, "b_epoch": o.epoch,
                   "b_state": o.state.value, "b_now": now, "b_next": o.next_attempt_at,
                   "b_code": o.error_code, "b_error": o.last_error, "b_ref": o.provider_ref,
                   "b_sent": o.sent_at, "b_uncount": int(not o.counted)}
                  for o in outcomes]
        async with self._begin() as conn:
            held = await self._held(conn, owner, outcomes) if self._postgres else None
            result = await conn.execute(_RECORD, params)
        return result.rowcount if held is None else held

    @staticmethod
    async def _held(conn: AsyncConnection, owner: str, outcomes: Sequence[Outcome]) -> int:
        """How many of the outcomes' claims ``owner`` holds, locking them (asyncpg has no
        row count for an executemany)."""
        d = deliveries.c
        claims = [(o.delivery_id, o.epoch) for o in outcomes]
        rows = await conn.execute(select(d.id).where(
            tuple_(d.id, d.lease_epoch).in_(claims), d.lease_owner == owner)
            .with_for_update())
        return len(rows.all())

    async def release(self, owner: str, claims: Sequence[Claimed], now: datetime) -> None:
        """Give back claimed deliveries that were not started (a clean stop, a lost lease),
        where the claim is still the owner's."""
        if not claims:
            return
        d = deliveries.c
        statement = (
            update(deliveries)
            .where(d.id == bindparam("b_id"), d.lease_owner == owner,
                   d.lease_epoch == bindparam("b_epoch"),
                   d.state == DeliveryState.SENDING.value)
            .values(state=DeliveryState.PENDING.value, lease_owner=None,
                    lease_expires_at=None, attempts=d.attempts - 1, updated_at=now))
        async with self._begin() as conn:
            await conn.execute(statement, [{"b_id": c.id, "b_epoch": c.epoch} for c in claims])

    async def expire(self, notice_id: int, channel: str, reason: str, now: datetime) -> int:
        """The notice stopped mattering: the channel's deliveries not yet sent become
        expired, and those whose sender died holding them (it may have sent them)
        uncertain. A delivery under a live lease is left to its holder. Returns how many."""
        d = deliveries.c
        of_channel = (d.notice_id == notice_id, d.channel == channel)
        unheld = (d.state == DeliveryState.SENDING.value) & (d.lease_expires_at < now)
        async with self._begin() as conn:
            pending = await conn.execute(
                update(deliveries)
                .where(*of_channel, d.state == DeliveryState.PENDING.value)
                .values(state=DeliveryState.EXPIRED.value, error_code="expired",
                        last_error=reason, updated_at=now))
            orphaned = await conn.execute(
                update(deliveries).where(*of_channel, unheld)
                .values(state=DeliveryState.UNCERTAIN.value, lease_owner=None,
                        lease_expires_at=None, error_code="expired",
                        last_error=f"{reason}; its sender stopped while holding it, so it "
                                   "may have gone out", updated_at=now))
        return pending.rowcount + orphaned.rowcount

    async def hold_pending(self, notice_id: int, channel: str, code: str | None, error: str,
                           now: datetime) -> int:
        """The channel has stopped (its provider refused our login): every pending
        delivery of it says why it waits. Returns how many."""
        d = deliveries.c
        async with self._begin() as conn:
            held = await conn.execute(
                update(deliveries)
                .where(d.notice_id == notice_id, d.channel == channel,
                       d.state == DeliveryState.PENDING.value)
                .values(error_code=code or "refused", last_error=error, updated_at=now))
        return held.rowcount

    async def submitted(self, notice_id: int, channel: str) -> list[tuple[Claimed, str]]:
        """Deliveries the provider has yet to confirm, with the provider's reference."""
        d = deliveries.c
        async with self._connect() as conn:
            rows = await conn.execute(
                select(d.id, d.contact_id, d.channel, d.address, d.attempts,
                       func.coalesce(d.lease_epoch, 0), d.provider_ref)
                .where(d.notice_id == notice_id, d.channel == channel,
                       d.state == DeliveryState.SUBMITTED.value))
            return [(Claimed(*row[:6]), row[6] or "") for row in rows]

    async def settle(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Record how submitted deliveries ended: delivered, failed, or due again (pending
        from ``next_attempt_at``)."""
        d = deliveries.c
        async with self._begin() as conn:
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

    async def released_channels(self, notice_id: int, now: datetime) -> set[str]:
        """The notice's channels that may go at ``now`` (a retry or a resumed send sends
        only these; the others wait for the notice's time)."""
        async with self._connect() as conn:
            return set((await conn.execute(select(released_channels(notice_id, now))))
                       .scalars())

    async def next_wakeup(self, notice_id: int, channel: str, owner: str, now: datetime
                          ) -> datetime | None:
        """When the next not-yet-final delivery of the channel becomes claimable by
        ``owner``, if any; None too while the channel is not released at ``now`` (its
        deliveries wait for the notice's time: the notice is partial until then)."""
        d = deliveries.c
        pending = select(func.min(d.next_attempt_at)).where(
            d.notice_id == notice_id, d.channel == channel,
            d.state == DeliveryState.PENDING.value)
        leased = select(func.min(d.lease_expires_at)).where(
            d.notice_id == notice_id, d.channel == channel, d.lease_owner != owner,
            d.state == DeliveryState.SENDING.value)
        async with self._connect() as conn:
            release = await conn.scalar(_release_of(notice_id, channel))
            times: list[datetime | None] = [await conn.scalar(pending),
                                            await conn.scalar(leased)]
        found = [t for t in times if t is not None]
        if not found or release is None or release > now:  # nothing to do before then
            return None
        return min(found)


def _release_of(notice_id: int, channel: str) -> Any:
    r = notice_releases.c
    return select(r.release_at).where(r.notice_id == notice_id, r.channel == channel)


def released_channels(notice_id: int, now: datetime) -> Any:
    """The notice's channels released by ``now``, as a subquery."""
    r = notice_releases.c
    return (select(r.channel).where(r.notice_id == notice_id, r.release_at <= now)
            .scalar_subquery())
