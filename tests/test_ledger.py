"""One contract suite for the ledger, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from dispatcher.errors import ConfigError, StaleError
from dispatcher.ledger import Cause, DeliveryState, Ledger, Opening, Outcome, engine_url
from dispatcher.table import Report, WorkReport
from tests.helpers import LEDGER_T0, new_deliveries, planned_notice
from tests.servers import fresh_schema

T0 = LEDGER_T0


def test_relative_sqlite_path_is_relative_to_the_config(tmp_path: Path) -> None:
    url = engine_url("sqlite:///var/ledger.sqlite3", tmp_path)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "var" / "ledger.sqlite3")
    assert engine_url("postgresql://u@h/db", tmp_path).drivername == "postgresql+asyncpg"
    with pytest.raises(ConfigError, match="only sqlite"):
        engine_url("mysql://u@h/db", tmp_path)


async def test_notice_is_created_once(ledger: Ledger) -> None:
    def opening(actor: str) -> Opening:
        return Opening("w3", "planned", "start", actor, {"email": T0}, Cause.OPERATOR)

    first, created, _ = await ledger.open_notice(opening("operator:a"), [], T0)
    again, created_again, _ = await ledger.open_notice(opening("operator:b"), [], T0)
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.triggered_by == "operator:a"
    assert again.created_at == T0


async def test_planning_twice_adds_only_new_deliveries(ledger: Ledger) -> None:
    opening = Opening("w3", "planned", "start", "t", {"email": T0})
    notice, _, added = await ledger.open_notice(opening, new_deliveries(30), T0)
    assert added == 30
    assert (await ledger.open_notice(opening, new_deliveries(32), T0))[2] == 2
    assert await ledger.counts(notice.id) == {("email", "pending"): 32}


async def test_claims_never_overlap_and_expired_leases_are_reclaimed(ledger: Ledger) -> None:
    notice = await planned_notice(ledger, "start", new_deliveries(10), T0)
    lease = T0 + timedelta(seconds=60)
    a, b = await asyncio.gather(
        ledger.claim(notice.id, "email", "a", T0, lease, 6),
        ledger.claim(notice.id, "email", "b", T0, lease, 6))
    ids_a, ids_b = {c.id for c in a}, {c.id for c in b}
    assert not ids_a & ids_b and len(ids_a | ids_b) == 10
    assert await ledger.claim(notice.id, "email", "c", T0 + timedelta(seconds=59), lease, 10) == []
    reclaimed = await ledger.claim(notice.id, "email", "c", T0 + timedelta(seconds=61),
                                   lease + timedelta(seconds=61), 10)
    assert len(reclaimed) == 10 and all(c.attempts == 2 for c in reclaimed)


async def test_outcomes_are_recorded_only_by_the_lease_holder(ledger: Ledger) -> None:
    notice = await planned_notice(ledger, "end", new_deliveries(3), T0)
    claimed = await ledger.claim(notice.id, "email", "a", T0, T0 + timedelta(seconds=60), 3)
    retry_at = T0 + timedelta(seconds=5)
    await ledger.record("a", [
        Outcome(claimed[0].id, DeliveryState.SENT, provider_ref="<id@x>", sent_at=T0,
                epoch=claimed[0].epoch),
        Outcome(claimed[1].id, DeliveryState.FAILED, error_code="550", last_error="no user",
                epoch=claimed[1].epoch),
        Outcome(claimed[2].id, DeliveryState.PENDING, next_attempt_at=retry_at,
                error_code="451", last_error="try later", epoch=claimed[2].epoch),
    ], T0)
    await ledger.record("intruder", [Outcome(claimed[1].id, DeliveryState.SENT,
                                             epoch=claimed[1].epoch)], T0)
    records = {r.id: r for r in await ledger.deliveries_of(notice.id)}
    assert records[claimed[0].id].state == "sent"
    assert records[claimed[0].id].provider_ref == "<id@x>"
    assert (records[claimed[1].id].state, records[claimed[1].id].error_code) == ("failed", "550")
    assert await ledger.claim(notice.id, "email", "b", T0, T0, 3) == []
    assert await ledger.next_wakeup(notice.id, "email", "b", T0) == retry_at
    later = await ledger.claim(notice.id, "email", "b", retry_at, retry_at, 3)
    assert [c.id for c in later] == [claimed[2].id]


async def test_requeue_makes_failed_deliveries_due_again(ledger: Ledger) -> None:
    notice = await planned_notice(ledger, "start", new_deliveries(2), T0)
    claimed = await ledger.claim(notice.id, "email", "a", T0, T0 + timedelta(seconds=9), 2)
    await ledger.record("a", [Outcome(c.id, DeliveryState.FAILED, error_code="550",
                                      epoch=c.epoch) for c in claimed], T0)
    assert await ledger.requeue(notice.id, ["failed"], T0) == 2
    again = await ledger.claim(notice.id, "email", "a", T0, T0 + timedelta(seconds=9), 5)
    assert [c.attempts for c in again] == [1, 1]


async def test_audit_log_keeps_who_did_what(ledger: Ledger) -> None:
    await ledger.audit("operator:root", "send", "w3", {"phase": "start", "note": "手動"}, T0)
    [entry] = await ledger.audit_entries("w3")
    assert (entry["actor"], entry["action"], entry["detail"]) == (
        "operator:root", "send", {"phase": "start", "note": "手動"})


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_many_openers_of_a_new_ledger_all_succeed(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    # Two daemons started together both create the schema; neither may fail on the other's table.
    if backend == "sqlite":
        url = engine_url("sqlite:///var/ledger.sqlite3", tmp_path)
    else:
        url = engine_url(request.getfixturevalue("postgres_url"), tmp_path)
        await fresh_schema(url)
    for _ in range(10):
        opened = await asyncio.gather(*(Ledger.open(url) for _ in range(16)))
        assert len(opened) == 16
        assert await opened[0].notice_states() == {}
        await asyncio.gather(*(ledger.close() for ledger in opened))
        if backend == "sqlite":  # the file and its WAL companions: a stale -wal or -shm
            database = Path(url.database or "")  # beside a new file is a disk I/O error
            for path in (database, *database.parent.glob(f"{database.name}-*")):
                path.unlink()
        else:
            await fresh_schema(url)


async def test_work_reports_are_recorded_once_each_on_the_view_they_were_made_from(
        ledger: Ledger) -> None:
    def made(kind: Report, number: int, minutes: int) -> WorkReport:
        moment = LEDGER_T0 + timedelta(minutes=minutes)
        return WorkReport("w", "planned", kind, number, moment,
                          moment + timedelta(minutes=30), "理由", "night-desk")

    first = made(Report.EXTENDED, 1, 0)
    await ledger.record_report(first)
    with pytest.raises(StaleError, match="1 extended report"):
        await ledger.record_report(made(Report.EXTENDED, 1, 1))  # the same view again
    await ledger.record_report(made(Report.UPDATE, 1, 2))
    done = made(Report.DONE, 1, 3)
    await ledger.record_report(done)
    for late in (made(Report.EXTENDED, 2, 4), made(Report.DONE, 1, 4)):
        with pytest.raises(StaleError, match="reported done"):
            await ledger.record_report(late)
    reports = await ledger.work_reports()
    assert [(r.kind, r.number) for r in reports[("w", "planned")]] == [
        (Report.EXTENDED, 1), (Report.UPDATE, 1), (Report.DONE, 1)]
    assert reports[("w", "planned")][0] == first and reports[("w", "planned")][2] == done
