"""Who a notice did not reach, as the console shows it: the first page of them and how
many there are, or all of them as the help desk's CSV. Only the reached contacts and the
shown ones' deliveries are read: a page about 100,000 contacts does not read 300,000
deliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from dispatcher.ledger import Ledger, NoticeRecord
from dispatcher.receipts import ReachReads, Unreached, gone_from, unreached_csv_lines
from dispatcher.web.audience import Audience

UNREACHED_SHOWN = 100  # on the page; the CSV has them all
CSV_CONTACTS_AT_ONCE = 500


class UnreachedReader:
    """Reads, for one console, who its notices did not reach."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._reads = ReachReads(ledger)
        # the last _gone: for (notice id, deliveries planned) and that Audience (an object
        # compared by identity: an id() can be reused once the old table is freed)
        self._gone_found: tuple[object, Audience | None, list[str]] = (None, None, [])

    async def page(self, record: NoticeRecord | None, audience: Audience, grace: timedelta,
                   now: datetime, planned: int, asks: bool = False
                   ) -> tuple[list[Unreached], int]:
        """The first ``UNREACHED_SHOWN`` contacts no delivery reached (``asks``: who did not
        confirm), and how many there are; ``planned``: how many deliveries the notice has
        (the caller has counted)."""
        if record is None:
            return [], 0
        missing = await self._missing(record, audience, now - grace, planned, asks)
        shown = missing[:UNREACHED_SHOWN]
        contacts = [audience.by_id[i] for i in shown if i in audience.by_id]
        return (await self._reads.rows(record, asks, contacts, shown, grace, now),
                len(missing))

    async def count(self, record: NoticeRecord, audience: Audience, grace: timedelta,
                    now: datetime, planned: int, asks: bool = False) -> int:
        """How many contacts no delivery reached (the page's total, without its rows)."""
        return len(await self._missing(record, audience, now - grace, planned, asks))

    async def csv_lines(self, record: NoticeRecord | None, audience: Audience,
                        grace: timedelta, now: datetime, asks: bool = False
                        ) -> AsyncIterator[str]:
        """The header, then every contact no delivery reached, the deliveries read for a
        few hundred contacts at a time."""
        yield "".join(unreached_csv_lines([]))
        if record is None:
            return
        planned = sum((await self._ledger.counts(record.id)).values())
        missing = await self._missing(record, audience, now - grace, planned, asks)
        for start in range(0, len(missing), CSV_CONTACTS_AT_ONCE):
            chunk = missing[start:start + CSV_CONTACTS_AT_ONCE]
            contacts = [audience.by_id[i] for i in chunk if i in audience.by_id]
            found = await self._reads.rows(record, asks, contacts, chunk, grace, now)
            yield "".join(unreached_csv_lines((u.to_json() for u in found), header=False))

    async def _missing(self, record: NoticeRecord, audience: Audience, sent_before: datetime,
                       planned: int, asks: bool) -> list[str]:
        gone = await self._gone(record, audience, planned)
        return await self._reads.missing(record, asks, (c.id for c in audience.contacts),
                                         gone, sent_before)

    async def _gone(self, record: NoticeRecord, audience: Audience, planned: int
                    ) -> list[str]:
        """The notice's contacts no longer in its audience (a table edited since it was
        sent); read again only when deliveries were added (none is ever removed)."""
        key, for_audience, gone = self._gone_found
        if key != (record.id, planned) or for_audience is not audience:
            gone = gone_from(audience.by_id, await self._ledger.contacts_named(record.id))
            self._gone_found = ((record.id, planned), audience, gone)
        return gone
