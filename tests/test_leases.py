"""Leases: renewed while the holder works, never re-claimed by their owner, outcomes written
only by the current holder of the same claim, expiry only of what nobody holds; and a slow
fax gateway under a short lease gets each fax once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from dispatcher.ledger import DeliveryState, Ledger, Outcome
from tests.helpers import (
    FAST_RETRY,
    LEDGER_T0,
    Cli,
    configure,
    new_deliveries,
    planned_notice,
    smtp_channel,
    use_contacts,
)
from tests.servers import SmtpSink, smtp_server

T0 = LEDGER_T0
LEASE = timedelta(seconds=60)


async def _notice_with(ledger: Ledger, count: int) -> int:
    return (await planned_notice(ledger, "start", new_deliveries(count), T0)).id


async def test_an_owner_never_reclaims_its_own_claims_another_sender_takes_them_over(
        ledger: Ledger) -> None:
    notice = await _notice_with(ledger, 3)
    mine = await ledger.claim(notice, "email", "a", T0, T0 + LEASE, 10)
    later = T0 + LEASE + timedelta(seconds=1)
    assert await ledger.claim(notice, "email", "a", later, later + LEASE, 10) == []
    taken = await ledger.claim(notice, "email", "b", later, later + LEASE, 10)
    assert [c.id for c in taken] == [c.id for c in mine]
    assert all(t.epoch == m.epoch + 1 for t, m in zip(taken, mine, strict=True))

    late = [Outcome(c.id, DeliveryState.FAILED, error_code="550", epoch=c.epoch) for c in mine]
    assert await ledger.record("a", late, later) == 0  # no longer a's: nothing written
    assert await ledger.record("b", [Outcome(c.id, DeliveryState.SENT, epoch=c.epoch)
                                     for c in taken], later) == 3
    assert {r.state for r in await ledger.deliveries_of(notice)} == {"sent"}


async def test_an_outcome_of_an_earlier_claim_of_the_same_owner_is_not_written(
        ledger: Ledger) -> None:
    notice = await _notice_with(ledger, 1)
    [first] = await ledger.claim(notice, "email", "a", T0, T0 + LEASE, 1)
    await ledger.release("a", [first], T0)
    [second] = await ledger.claim(notice, "email", "a", T0, T0 + LEASE, 1)
    assert second.epoch == first.epoch + 1
    stale = Outcome(first.id, DeliveryState.FAILED, error_code="550", epoch=first.epoch)
    assert await ledger.record("a", [stale], T0) == 0
    assert await ledger.record("a", [Outcome(second.id, DeliveryState.SENT,
                                             epoch=second.epoch)], T0) == 1


async def test_a_renewed_lease_is_not_taken_over(ledger: Ledger) -> None:
    notice = await _notice_with(ledger, 2)
    await ledger.claim(notice, "email", "a", T0, T0 + LEASE, 2)
    halfway = T0 + LEASE / 2
    assert await ledger.renew("a", notice, "email", halfway, halfway + LEASE) == 2
    past_first_lease = T0 + LEASE + timedelta(seconds=1)
    assert await ledger.claim(notice, "email", "b", past_first_lease,
                              past_first_lease + LEASE, 2) == []
    assert await ledger.renew("b", notice, "email", halfway, halfway + LEASE) == 0


async def test_expiry_leaves_held_deliveries_to_their_holder(ledger: Ledger) -> None:
    notice = await _notice_with(ledger, 3)
    held = await ledger.claim(notice, "email", "a", T0, T0 + LEASE, 1)
    orphaned = await ledger.claim(notice, "email", "dead", T0, T0 + timedelta(seconds=5), 1)
    now = T0 + timedelta(seconds=10)
    assert await ledger.expire(notice, "email", "the work had begun", now) == 2
    states = {r.id: r.state for r in await ledger.deliveries_of(notice)}
    assert states[held[0].id] == "sending"
    assert states[orphaned[0].id] == "uncertain"  # its sender may have sent it
    assert sorted(states.values()) == ["expired", "sending", "uncertain"]
    assert await ledger.record("a", [Outcome(held[0].id, DeliveryState.SENT,
                                             epoch=held[0].epoch)], now) == 1


class _SlowGateway(SmtpSink):
    """An e-mail-to-fax gateway that takes half a second over each message."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        await asyncio.sleep(0.5)
        return await super().handle_DATA(server, session, envelope)


def test_a_slow_fax_gateway_under_a_short_lease_gets_each_fax_once(
        cli: Cli, project: Path) -> None:
    rows = "".join(f"F{n:03d},店{n},,03-5551-{n:04d},,,emoney\n" for n in range(40))
    use_contacts(project, rows)
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace("catch_up_minutes = 30",
                                    "catch_up_minutes = 30\nlease_seconds = 4"),
                       encoding="utf-8")
    with smtp_server(sink=_SlowGateway()) as (gateway, port, _):
        configure(project, smtp_channel(port) + """
[channels.fax]
backend = "email-gateway"
gateway_address = "{national}@fax.example.jp"
concurrency = 2
""", FAST_RETRY)
        sent = cli("send", "3", "start", "--channel", "fax", "--yes", "-c", str(project))
        recipients = gateway.recipients()
    assert sent.code == 0, sent.err
    assert len(recipients) == 40
    assert len(set(recipients)) == 40
    assert "40/40" in sent.err
