"""A notice's lifecycle in the ledger, on SQLite and a real PostgreSQL: every write of its
state is compare-and-set against LIFECYCLE, nothing is claimed before its channel's
release time, and the read-then-write transactions hold when two ledgers race."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.engine import URL

from dispatcher.errors import StaleError
from dispatcher.ledger import (
    LIFECYCLE,
    Cause,
    DeliveryState,
    Ledger,
    LifecycleError,
    NoticeState,
    Opening,
    Outcome,
    Report,
)
from dispatcher.ledger.states import check_move, opened_state
from dispatcher.table import Report as Kind
from dispatcher.table import WorkReport
from tests.helpers import LEDGER_T0 as T0
from tests.helpers import new_deliveries

ONE_AM = T0 + timedelta(hours=2)  # the notice's own time in these tests
LEASE = timedelta(seconds=60)


def by_hand(channels: dict[str, object]) -> Opening:
    return Opening("w3", "planned", "start", "operator:a", channels, Cause.OPERATOR)  # type: ignore[arg-type]


def test_only_an_operator_reopens_a_missed_notice_and_a_report_never_does() -> None:
    for cause in Cause:
        reopens = (NoticeState.MISSED, NoticeState.SENDING) in LIFECYCLE[cause]
        assert reopens == (cause is Cause.OPERATOR), cause
    with pytest.raises(LifecycleError):
        check_move(Cause.REPORT, NoticeState.MISSED, NoticeState.SENDING)
    with pytest.raises(LifecycleError):  # a sending run never settles a missed notice
        check_move(Cause.SETTLED, NoticeState.MISSED, NoticeState.DONE)
    assert opened_state(NoticeState.MISSED, Cause.SCHEDULE, 3) is NoticeState.MISSED
    assert opened_state(NoticeState.MISSED, Cause.OPERATOR, 0) is NoticeState.SENDING
    assert opened_state(NoticeState.PARTIAL, Cause.SCHEDULE, 3) is NoticeState.SENDING
    assert opened_state(NoticeState.DONE, Cause.SCHEDULE, 0) is NoticeState.DONE


async def test_a_partial_send_by_hand_holds_the_rest_and_settles_partial(
        ledger: Ledger) -> None:
    """Created in one transaction with its deliveries and release times, ``sending`` while
    its sender is at the SMS; ``partial`` once they are done (the e-mail waits)."""
    record, created, added = await ledger.open_notice(
        by_hand({"sms": T0, "email": None}), new_deliveries(3, "sms"), T0)
    assert (created, added, record.state) == (True, 3, NoticeState.SENDING)
    assert await ledger.releases_of(record.id) == {"sms": T0, "email": None}
    claims = await ledger.claim(record.id, "sms", "a", T0, T0 + LEASE, 10)
    assert len(claims) == 3
    assert not await ledger.settle_notice(record.id, NoticeState.PARTIAL, T0)  # not yet
    await ledger.record("a", [Outcome(c.id, DeliveryState.SENT, sent_at=T0, epoch=c.epoch)
                              for c in claims], T0)
    assert await ledger.settle_notice(record.id, NoticeState.PARTIAL, T0)


async def test_nothing_is_claimed_before_its_channels_release(ledger: Ledger) -> None:
    """E-mail planned early, released at the notice's own time (AM1:00): nothing of it is
    handed out before, even once the notice is made 'sending' (by a report)."""
    record, _, _ = await ledger.open_notice(by_hand({"email": ONE_AM}), new_deliveries(2), T0)
    assert await ledger.claim(record.id, "email", "a", T0, T0 + LEASE, 10) == []
    assert await ledger.next_wakeup(record.id, "email", "a", T0) is None  # partial till then
    assert await ledger.planned(record.id, T0) == ({"email": {"C0000", "C0001"}}, 0, 2)
    assert await ledger.next_wakeup(record.id, "email", "a", ONE_AM) == T0
    just_before = ONE_AM - timedelta(microseconds=1)
    assert await ledger.claim(record.id, "email", "a", just_before, ONE_AM + LEASE, 10) == []
    assert len(await ledger.claim(record.id, "email", "a", ONE_AM, ONE_AM + LEASE, 10)) == 2


async def test_a_release_only_moves_earlier(ledger: Ledger) -> None:
    record, _, _ = await ledger.open_notice(by_hand({"sms": T0, "email": None}), [], T0)
    later = Opening("w3", "planned", "start", "schedule", {"sms": ONE_AM, "email": ONE_AM})
    again, _, _ = await ledger.open_notice(later, [], ONE_AM)
    assert await ledger.releases_of(record.id) == {"sms": T0, "email": ONE_AM}
    assert again.state == NoticeState.SENDING


async def test_settling_waits_for_a_report_that_asked_for_another_attempt(
        ledger: Ledger) -> None:
    record, _, _ = await ledger.open_notice(by_hand({"sms": T0}), new_deliveries(1, "sms"), T0)
    [claim] = await ledger.claim(record.id, "sms", "a", T0, T0 + LEASE, 1)
    await ledger.record("a", [Outcome(claim.id, DeliveryState.SENT, provider_ref="SM1",
                                      sent_at=T0, epoch=claim.epoch)], T0)
    await ledger.apply_reports([Report(claim.id, "test", "undelivered", "30003", "away", "r1",
                                       DeliveryState.PENDING, T0)], T0)
    assert not await ledger.settle_notice(record.id, NoticeState.DONE, T0)
    assert (await ledger.notice("w3", "planned", "start")).state == NoticeState.SENDING  # type: ignore[union-attr]


async def test_a_report_never_reopens_a_missed_notice(ledger: Ledger) -> None:
    record, _, _ = await ledger.open_notice(by_hand({"sms": T0, "email": None}),
                                            new_deliveries(1, "sms"), T0)
    [claim] = await ledger.claim(record.id, "sms", "a", T0, T0 + LEASE, 1)
    await ledger.record("a", [Outcome(claim.id, DeliveryState.SENT, provider_ref="SM1",
                                      sent_at=T0, epoch=claim.epoch)], T0)
    assert await ledger.settle_notice(record.id, NoticeState.PARTIAL, T0)
    assert await ledger.record_missed("w3", "planned", "start", ONE_AM)
    await ledger.apply_reports([Report(claim.id, "test", "undelivered", "30003", "away", "r1",
                                       DeliveryState.PENDING, ONE_AM)], ONE_AM)
    after = await ledger.notice("w3", "planned", "start")
    assert after is not None and after.state == NoticeState.MISSED
    assert [d.state for d in await ledger.deliveries_of(record.id)] == ["sent"]


async def test_a_retry_of_a_partial_notice_keeps_the_rest_waiting(ledger: Ledger) -> None:
    record, _, _ = await ledger.open_notice(by_hand({"sms": T0, "email": None}),
                                            new_deliveries(2, "sms"), T0)
    claims = await ledger.claim(record.id, "sms", "a", T0, T0 + LEASE, 2)
    await ledger.record("a", [Outcome(c.id, DeliveryState.FAILED, error_code="21211",
                                      epoch=c.epoch) for c in claims], T0)
    assert await ledger.settle_notice(record.id, NoticeState.PARTIAL, T0)
    assert await ledger.requeue(record.id, ["failed"], T0) == 2
    after = await ledger.notice("w3", "planned", "start")
    assert after is not None and after.state == NoticeState.SENDING  # at the SMS again
    assert await ledger.releases_of(record.id) == {"sms": T0, "email": None}


async def test_done_and_extend_made_at_once_are_never_both_recorded(ledger_url: URL) -> None:
    """Twenty times, from two ledgers (two processes' engines), both made on the same
    view: exactly one of them is recorded, the other is refused as stale."""
    first, second = await Ledger.open(ledger_url), await Ledger.open(ledger_url)
    try:
        for n in range(20):
            slot = f"reserve-{n}"
            done = WorkReport("w3", slot, Kind.DONE, 1, ONE_AM, ONE_AM, "", "a", seen=0)
            extend = WorkReport("w3", slot, Kind.EXTENDED, 1, ONE_AM, ONE_AM + LEASE, "", "b",
                                seen=0)
            results = await asyncio.gather(first.record_report(done),
                                           second.record_report(extend),
                                           return_exceptions=True)
            assert sorted(type(r).__name__ for r in results) == ["NoneType", "StaleError"]
            assert all(r is None or isinstance(r, StaleError) for r in results)
            assert len((await first.work_reports())[("w3", slot)]) == 1
    finally:
        await first.close()
        await second.close()
