"""The Ledger API: the single record of what was sent. SQLite by default, PostgreSQL for HA.

Every path that sends claims deliveries here under a lease, so no two paths (a scheduled
job, a manual `send`, a second daemon) send the same delivery at the same time; a lease
left behind by a crash expires and the delivery is claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from dispatcher.ledger.confirmations import ConfirmationLog, SetAsideList, SuppressionList
from dispatcher.ledger.deliveries import DeliveryQueue
from dispatcher.ledger.delivery_reads import DeliveryReads
from dispatcher.ledger.engine import open_engine
from dispatcher.ledger.events import EventLog
from dispatcher.ledger.lifecycle import NoticeLifecycle
from dispatcher.ledger.notices import NoticeQueries
from dispatcher.ledger.publications import PublicationLog
from dispatcher.ledger.records import NoticeFailure, Suppression
from dispatcher.ledger.states import NoticeState
from dispatcher.ledger.work import WorkLog
from dispatcher.table import WorkKey, WorkReport


class Ledger(NoticeQueries, NoticeLifecycle, DeliveryQueue, DeliveryReads, EventLog, PublicationLog,
             WorkLog, ConfirmationLog, SuppressionList, SetAsideList):
    """Async access to the ledger database; open with ``await Ledger.open(url)``."""

    @classmethod
    async def open(cls, url: URL) -> Ledger:
        """Connect, and create the tables on first use."""
        return cls(await open_engine(url))

    async def close(self) -> None:
        await self._engine.dispose()


def may_exist(url: URL) -> bool:
    """False for a SQLite ledger whose file is not there (opening it would create it)."""
    return url.get_backend_name() != "sqlite" or Path(url.database or "").exists()


@dataclass(frozen=True)
class Peek:
    """What the views read of a ledger: the active slots, the notices' states, the
    reports of the work, the suppressed addresses and the notices the daemon could not
    send (all empty for a ledger not made yet)."""

    active_slots: dict[str, str] = field(default_factory=dict)
    notice_states: dict[str, NoticeState] = field(default_factory=dict)
    work_reports: dict[WorkKey, list[WorkReport]] = field(default_factory=dict)
    suppressions: list[Suppression] = field(default_factory=list)
    notice_failures: dict[str, NoticeFailure] = field(default_factory=dict)  # by key


async def peek(url: URL) -> Peek:
    """The ledger's state, without creating a SQLite ledger that is not there."""
    if not may_exist(url):
        return Peek()
    ledger = await Ledger.open(url)
    try:
        return Peek(await ledger.active_slots(), await ledger.notice_states(),
                    await ledger.work_reports(), await ledger.suppressions(),
                    await ledger.notice_failures())
    finally:
        await ledger.close()
