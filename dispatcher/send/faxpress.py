"""Fax pages rendered ahead of sending: each claimed batch's pages are laid out together
(``render_pdfs``) in worker processes, as many as the lines need (``pace_for``), while
the workers send what is already rendered. Pages are kept only until sent (and a few
recent ones, so a page shared by every contact is made once), so memory stays flat
however large the broadcast."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dispatcher.render import FaxDocument, RecentPages, page_key, render_pdfs
from dispatcher.table import ChannelConfig

PAGES_PER_BATCH = 64
# what one worker process lays out a second, at the least (bench/render.py: 9-15 in batches)
PAGES_PER_SECOND_PER_WORKER = 5.0


# pages kept rendered ahead of the lines: what they send in this long, and at least a few
SECONDS_AHEAD = 60
MIN_PAGES_AHEAD = 8


@dataclass(frozen=True)
class FaxPace:
    """How many worker processes render fax pages, and how many pages are kept ahead."""

    workers: int
    pages_ahead: int


def pace_for(settings: ChannelConfig) -> FaxPace:
    """Rendering that follows the configured lines, the pace the capacity estimate uses
    (``concurrency`` faxes each ``seconds_per_fax``, at most ``rate_per_second``): 4 lines
    take a fax every 12 s, so one worker (about 120-170 MB each) keeps a minute of pages
    ahead of them; a gateway configured with many fast lines gets a worker per core."""
    per_second = settings.concurrency / settings.seconds_per_message
    if settings.rate_per_second:
        per_second = min(per_second, settings.rate_per_second)
    workers = min(_most_workers(), max(1, math.ceil(per_second / PAGES_PER_SECOND_PER_WORKER)))
    ahead = max(MIN_PAGES_AHEAD, math.ceil(per_second * SECONDS_AHEAD))
    return FaxPace(workers, min(ahead, PAGES_PER_BATCH * workers))


def _most_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


class FaxPress:
    def __init__(self, base_url: Path, pace: FaxPace | None = None) -> None:
        self._base_url = str(base_url)
        self._pace = pace or FaxPace(_most_workers(), PAGES_PER_BATCH * _most_workers())
        self._pool: Executor | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fax-page")
        self._pending: dict[str, asyncio.Future[FaxDocument]] = {}
        self._recent = RecentPages()
        self.rendered = 0

    @property
    def pages_ahead(self) -> int:
        """How many pages to prepare at once: what the lines send in a while, or enough to
        keep every worker process busy."""
        return self._pace.pages_ahead

    def prepare(self, htmls: Iterable[str]) -> None:
        """Start rendering these pages (those not already rendered or on their way)."""
        new: dict[str, str] = {}
        for html in htmls:
            key = page_key(html)
            if key not in self._pending and key not in self._recent:
                new.setdefault(key, html)
        loop = asyncio.get_running_loop()
        items = list(new.items())
        for start in range(0, len(items), PAGES_PER_BATCH):
            keys = [key for key, _ in items[start:start + PAGES_PER_BATCH]]
            pages = [html for _, html in items[start:start + PAGES_PER_BATCH]]
            batch = loop.run_in_executor(self._executor(len(pages)), render_pdfs, pages,
                                         self._base_url)
            self.rendered += len(pages)
            for index, key in enumerate(keys):
                self._pending[key] = asyncio.ensure_future(_page(batch, index))

    async def document(self, html: str) -> FaxDocument:
        """The rendered page of ``html``, rendered now if it was not prepared."""
        key = page_key(html)
        recent = self._recent.get(key)
        if recent is not None:
            return recent
        if key not in self._pending:
            self.prepare([html])
        document = await self._pending[key]
        self._pending.pop(key, None)
        self._recent.put(key, document)
        return document

    async def close(self) -> None:
        """Drop what is pending, then wait for the worker processes to exit in a thread:
        they take a moment, and the loop goes on sending meanwhile."""
        for future in self._pending.values():
            future.cancel()
        await asyncio.to_thread(self._shut_down)

    def _shut_down(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._thread.shutdown(wait=True)

    def _executor(self, pages: int) -> Executor:
        """A lone page is rendered on a thread; batches go to worker processes, started
        (spawned: the daemon has threads, which fork does not copy) on first need."""
        if pages == 1 and self._pool is None:
            return self._thread
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._pace.workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool


async def _page(batch: asyncio.Future[list[FaxDocument]], index: int) -> FaxDocument:
    return (await batch)[index]
