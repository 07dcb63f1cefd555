"""The ledger's receipts: each report recorded once, states moving only forward. Run
against SQLite and a real PostgreSQL, like the rest of the ledger's contract."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.ledger import Applied, DeliveryState, Ledger, NoticeState, Outcome, Report
from tests.helpers import LEDGER_T0 as T0
from tests.helpers import new_deliveries, planned_notice

LATER = T0 + timedelta(minutes=3)


def report(delivery_id: int, status: str, state: DeliveryState | None, digest: str = "",
           code: str | None = None) -> Report:
    return Report(delivery_id, "test", status, code, f"{status} {code or ''}".strip(),
                  digest or f"{delivery_id}:{status}:{code}", state)


async def sent(ledger: Ledger, count: int) -> list[int]:
    """``count`` deliveries of a new notice, recorded as sent."""
    notice = await planned_notice(ledger, "start", new_deliveries(count, "sms"), T0)
    claimed = await ledger.claim(notice.id, "sms", "a", T0, T0 + timedelta(seconds=60), count)
    await ledger.record("a", [Outcome(c.id, DeliveryState.SENT, provider_ref=f"SM{c.id}",
                                      sent_at=T0, epoch=c.epoch) for c in claimed], T0)
    assert await ledger.settle_notice(notice.id, NoticeState.DONE, T0)
    return [c.id for c in claimed]


async def state_of(ledger: Ledger, delivery_id: int) -> str:
    [(delivery, _)] = (await ledger.deliveries_by_id([delivery_id])).values()
    return delivery.state


async def test_a_final_report_is_not_undone_by_a_late_one(ledger: Ledger) -> None:
    [one] = await sent(ledger, 1)
    applied = await ledger.apply_reports([
        report(one, "delivered", DeliveryState.DELIVERED),
        report(one, "sent", None),
        report(one, "undelivered", DeliveryState.UNDELIVERED, code="30005"),
    ], LATER)
    assert applied == [Applied.MOVED, Applied.RECORDED, Applied.RECORDED]
    assert await state_of(ledger, one) == "delivered"
    assert [e.status for e in await ledger.events_of(one)] == ["delivered", "sent",
                                                              "undelivered"]


async def test_the_same_report_read_twice_counts_once(ledger: Ledger) -> None:
    [one] = await sent(ledger, 1)
    bounce = report(one, "5.1.1", DeliveryState.BOUNCED, digest="mail-sha")
    assert await ledger.apply_reports([bounce], LATER) == [Applied.MOVED]
    assert await ledger.apply_reports([bounce, bounce], LATER) == [Applied.DUPLICATE] * 2
    assert len(await ledger.events_of(one)) == 1
    [(delivery, _)] = (await ledger.deliveries_by_id([one])).values()
    assert (delivery.state, delivery.error_code) == ("bounced", "5.1.1")


async def test_a_report_on_no_known_delivery_changes_nothing(ledger: Ledger) -> None:
    [one] = await sent(ledger, 1)
    assert await ledger.apply_reports([report(one + 1000, "5.1.1", DeliveryState.BOUNCED)],
                                      LATER) == [Applied.UNKNOWN]
    assert await state_of(ledger, one) == "sent"


async def test_a_report_before_the_attempt_is_recorded_wins_over_it(ledger: Ledger) -> None:
    notice = await planned_notice(ledger, "start", new_deliveries(2, "sms"), T0)
    first, second = await ledger.claim(notice.id, "sms", "a", T0, T0 + timedelta(seconds=60), 2)
    early = await ledger.apply_reports([
        report(first.id, "delivered", DeliveryState.DELIVERED),
        Report(second.id, "test", "undelivered", "30003", "unreachable", "x",
               DeliveryState.PENDING, LATER)], T0)
    assert early == [Applied.MOVED, Applied.EARLY]
    await ledger.record("a", [Outcome(c.id, DeliveryState.SENT, sent_at=T0, epoch=c.epoch)
                              for c in (first, second)], T0)
    assert await state_of(ledger, first.id) == "delivered"
    assert await state_of(ledger, second.id) == "sent"


async def test_a_retried_code_makes_the_delivery_and_its_notice_due_again(ledger: Ledger
                                                                         ) -> None:
    one, other = await sent(ledger, 2)
    retry_at = LATER + timedelta(seconds=30)
    retry = Report(one, "test", "undelivered", "30003", "unreachable", "r1",
                   DeliveryState.PENDING, retry_at)
    assert await ledger.apply_reports([retry], LATER) == [Applied.MOVED]
    [(delivery, notice)] = (await ledger.deliveries_by_id([one])).values()
    assert (delivery.state, delivery.error_code) == ("pending", "30003")
    [record] = await ledger.notices_of("w3")
    assert record.state == "sending"
    assert await ledger.next_wakeup(notice.id, "sms", "a", T0) == retry_at
    assert await state_of(ledger, other) == "sent"


async def test_deliveries_awaiting_a_report_are_the_sent_ones_not_asked_lately(ledger: Ledger
                                                                           ) -> None:
    one, other = await sent(ledger, 2)
    await ledger.apply_reports([report(other, "delivered", DeliveryState.DELIVERED)], LATER)
    waiting = await ledger.awaiting_report("sms", LATER, T0 - timedelta(days=1), 10)
    assert [d.id for d in waiting] == [one]
    assert await ledger.awaiting_report("sms", T0, T0 - timedelta(days=1), 10) == []
    assert await ledger.awaiting_report("sms", LATER, T0, 10) == []  # too old to ask about
    await ledger.mark_asked([one], LATER)
    assert await ledger.awaiting_report("sms", LATER, T0 - timedelta(days=1), 10) == []
