"""The Ledger API: the single record of what was sent. SQLite by default, PostgreSQL for HA.

Every path that sends claims deliveries here under a lease, so no two paths (a scheduled
job, a manual `send`, a second daemon) send the same delivery at the same time; a lease
left behind by a crash expires and the delivery is claimed again.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from dispatcher.ledger.deliveries import DeliveryQueue
from dispatcher.ledger.delivery_reads import DeliveryReads
from dispatcher.ledger.engine import open_engine
from dispatcher.ledger.events import EventLog
from dispatcher.ledger.notices import NoticeQueries
from dispatcher.ledger.publications import PublicationLog
from dispatcher.ledger.states import NoticeState
from dispatcher.ledger.work import WorkLog


class Ledger(NoticeQueries, DeliveryQueue, DeliveryReads, EventLog, PublicationLog,
             WorkLog):
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


async def peek(url: URL) -> tuple[dict[str, str], dict[str, NoticeState]]:
    """Active slots and notice states, without creating a SQLite ledger that is not there."""
    if not may_exist(url):
        return {}, {}
    ledger = await Ledger.open(url)
    try:
        return await ledger.active_slots(), await ledger.notice_states()
    finally:
        await ledger.close()
