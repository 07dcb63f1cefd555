"""What was published about each window, numbered: a window's published content changes,
its sequence goes up (the calendar's SEQUENCE, the feed's `updated`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dispatcher.ledger.engine import EngineUser
from dispatcher.ledger.records import PublicationRecord
from dispatcher.ledger.tables import publications

Snapshot = Mapping[str, Any]
_TICK = timedelta(microseconds=1)  # what keeps two windows' moments apart


class PublicationLog(EngineUser):
    """One row per window ever published: its last content, its digest and its sequence."""

    async def stamp_publications(self, current: Mapping[str, Snapshot],
                                 gone: Callable[[Snapshot], Snapshot], now: datetime,
                                 since: Callable[[Snapshot], datetime | None] = lambda _: None
                                 ) -> list[PublicationRecord]:
        """Record ``current`` (by window id): a window whose content changed gets the next
        sequence and the moment it changed; a window published before but no longer in
        ``current`` gets ``gone(its last content)`` the same way. Returns every window's
        record. The moment is ``since(content)`` (when what it shows began, e.g. the end
        of a work first published once over, or None) if that is later than its last
        change and not after ``now``, else ``now``; two windows never share one (the feed's entries
        each have their own ``updated``): a later one is a microsecond on."""
        try:
            return await self._stamp(current, gone, now, since)
        except IntegrityError:  # another process inserted the same window first
            return await self._stamp(current, gone, now, since)

    async def _stamp(self, current: Mapping[str, Snapshot],
                     gone: Callable[[Snapshot], Snapshot], now: datetime,
                     since: Callable[[Snapshot], datetime | None]
                     ) -> list[PublicationRecord]:
        p = publications.c
        async with self._begin() as conn:
            rows = {row.window_id: row for row in await conn.execute(select(publications))}
            wanted = dict(current)
            for window_id, known in rows.items():
                if window_id not in wanted:
                    wanted[window_id] = gone(json.loads(known.content))
            digests = {window_id: _digest(content) for window_id, content in wanted.items()}
            taken = {row.updated_at for row in rows.values()
                     if digests[row.window_id] == row.digest}
            records = []
            for window_id, content in wanted.items():
                digest = digests[window_id]
                row = rows.get(window_id)
                if row is not None and row.digest == digest:
                    records.append(PublicationRecord(window_id, row.sequence, row.updated_at,
                                                     content))
                    continue
                moment = since(content) or now
                if not (row is None or moment > row.updated_at) or moment > now:
                    moment = now
                while moment in taken:
                    moment += _TICK
                taken.add(moment)
                if row is None:
                    await conn.execute(publications.insert(), {
                        "window_id": window_id, "sequence": 0, "digest": digest,
                        "content": _json(content), "updated_at": moment})
                    records.append(PublicationRecord(window_id, 0, moment, content))
                else:
                    await conn.execute(
                        update(publications).where(p.window_id == window_id).values(
                            sequence=row.sequence + 1, digest=digest, content=_json(content),
                            updated_at=moment))
                    records.append(PublicationRecord(window_id, row.sequence + 1, moment,
                                                     content))
            return records


def _json(content: Snapshot) -> str:
    return json.dumps(content, ensure_ascii=False, sort_keys=True)


def _digest(content: Snapshot) -> str:
    return hashlib.sha256(_json(content).encode()).hexdigest()
