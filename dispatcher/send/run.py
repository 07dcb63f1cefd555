"""A notice's sending run: plan its deliveries, claim them under a lease, render, send,
record.

Every path that sends (the daemon's jobs, `send`, `retry`, a second daemon) goes through
here, and only claimed deliveries are sent, so no two paths send the same one at once.
Outcomes are written by group commit: a worker waits until its outcome is in the ledger
before it takes the next delivery, and the outcomes that arrive together share one
transaction. A crash therefore leaves at most one sent-but-unrecorded delivery per worker;
it is claimed again when its lease expires.

Transient failures are retried for as long as the notice matters (``RetryPolicy.deadline``);
then what is left expires. A provider that does not answer pauses its channel, which probes
it (``Breaker``); a ledger that does not answer is waited for (``Patience``). What differs
per channel is its ``ChannelStrategy``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from dispatcher.clock import Clock, Sleep
from dispatcher.ledger import Cause, Ledger, NewDelivery, NoticeRecord, NoticeState, Opening
from dispatcher.render import Renderer
from dispatcher.send.breaker import Breaker
from dispatcher.send.channels import Backend
from dispatcher.send.claims import ChannelRun, Claims
from dispatcher.send.context import OnOutage, OnProgress, SendingContext
from dispatcher.send.deliver import Deliverer
from dispatcher.send.identity import worker_id
from dispatcher.send.lanes import GroupCommit, Lane, RateLimiter
from dispatcher.send.patience import Patience
from dispatcher.send.strategy import strategy_for
from dispatcher.table import (
    PLANNED,
    Channel,
    Contact,
    Deadline,
    Inputs,
    Notice,
    in_audience,
    live_deadline,
    work_of,
)


@dataclass(frozen=True)
class Plan:
    """A notice's deliveries as planned: who gets what, and who cannot be reached."""

    record: NoticeRecord
    created: bool
    added: int
    lacking: Mapping[Channel, tuple[str, ...]]
    # contacts whose address on the channel is suppressed (dead, or it replied STOP)
    suppressed: Mapping[Channel, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class SendingRun:
    """Sends notices from one set of validated inputs through one ledger and these
    backends (which the caller made, and closes)."""

    inputs: Inputs
    ledger: Ledger
    backends: Mapping[Channel, Backend]
    clock: Clock
    sleep: Sleep = asyncio.sleep
    draw: Callable[[], float] = random.random
    owner: str = field(default_factory=worker_id)
    on_progress: OnProgress | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    on_outage: OnOutage | None = None

    def __post_init__(self) -> None:
        config = self.inputs.config
        self.patience = Patience(config.retry, self.clock, self.sleep, self.draw)
        self._context = SendingContext(self.ledger, self.owner, self.clock, self.sleep,
                                       self.draw, config.retry, self.patience, self.stopping,
                                       self.on_progress, self.on_outage)
        renderer = Renderer.of(self.inputs)
        contacts = {c.id: c for c in self.inputs.contacts}
        self._claims = Claims(self._context)
        # an escalation's audience (contact ids), and its notice's record id, by its key
        self._escalated: dict[str, set[str]] = {}
        self._bases: dict[str, int] = {}
        self._deliverer = Deliverer(self._context, self._claims, renderer, contacts,
                                    config.settings.timezone)
        self._strategies = {channel: strategy_for(channel, backend, config, renderer,
                                                  contacts, self.clock)
                            for channel, backend in self.backends.items()}

    @property
    def stopped(self) -> Mapping[Channel, str]:
        """Channels whose provider refused the sender, and why (they stopped)."""
        return self._deliverer.stopped

    def audience(self, notice: Notice) -> list[Contact]:
        """Who the notice goes to: its window's audience; an escalation's, those of it who
        had not confirmed its notice when it was planned (on whichever channels that
        notice reached them, or did not)."""
        everyone = in_audience(self.inputs.contacts, notice.window.audience)
        if notice.step is None:
            return everyone
        unconfirmed = self._escalated.get(notice.key, set())
        return [c for c in everyone if c.id in unconfirmed]

    async def _escalating(self, notice: Notice) -> None:
        """For an escalation: its notice's record, and who of the audience has not
        confirmed it."""
        ask = self._context.ask
        base = await ask(lambda: self.ledger.notice(notice.window.id, notice.slot.name,
                                                     notice.base_tag))
        if base is None:
            self._escalated[notice.key] = set()
            return
        confirmed = await ask(lambda: self.ledger.confirmations_of(base.id))
        everyone = in_audience(self.inputs.contacts, notice.window.audience)
        self._escalated[notice.key] = {c.id for c in everyone} - set(confirmed)
        self._bases[notice.key] = base.id

    async def plan(self, notice: Notice, channels: Iterable[Channel], triggered_by: str,
                   release_at: datetime | None = None, release: bool = True) -> Plan:
        """Record the notice, its channels' release times and its deliveries (audience x
        ``channels`` with an address), in one transaction. ``channels`` are released at
        ``release_at`` (the notice's own time, when the daemon sends it; by default now:
        an operator's send), the notice's other channels wait for its time; with
        ``release`` False none is released that was not before (the daemon resuming a
        notice left sending before its time). The notice is ``sending`` once all are
        released, else ``partial``."""
        ask, now = self._context.ask, self.clock()
        channels = list(channels)
        if notice.step is not None:
            await self._escalating(notice)
        wanted: list[NewDelivery] = []
        lacking: dict[Channel, tuple[str, ...]] = {}
        kept_off: dict[Channel, tuple[str, ...]] = {}
        suppressed = await ask(self.ledger.suppressed)
        for channel in channels:
            missing, off = [], []
            for contact in self.audience(notice):
                address = contact.address(channel)
                if address and address in suppressed.get(channel.value, ()):
                    off.append(contact.id)
                elif address:
                    wanted.append(NewDelivery(contact.id, channel.value, address))
                else:
                    missing.append(contact.id)
            lacking[channel], kept_off[channel] = tuple(missing), tuple(off)
        released = release_at or now
        opening = Opening(notice.window.id, notice.slot.name, notice.tag, triggered_by,
                          {c.value: released if release and c in channels else None
                           for c in (*notice.channels, *channels)},
                          Cause.SCHEDULE if triggered_by == "schedule" else Cause.OPERATOR)
        record, created, added = await ask(lambda: self.ledger.open_notice(opening, wanted,
                                                                           now))
        return Plan(record, created, added, lacking, kept_off)

    async def run(self, notice: Notice, record: NoticeRecord, channels: Iterable[Channel]
                  ) -> None:
        """Send until every delivery of these channels is final (or a stop is requested)."""
        committer = GroupCommit(self.ledger, self.owner, self.clock, self.patience)
        deadline = self.inputs.config.retry.deadline(notice, record.retrying_since)
        live = partial(self._live_deadline, notice, deadline)
        async with asyncio.TaskGroup() as group:
            for channel in channels:
                group.create_task(self._run_channel(notice, record, channel, deadline,
                                                    committer, live))
        await self.settle(notice, record)

    async def settle(self, notice: Notice, record: NoticeRecord) -> NoticeState | None:
        """Finish the notice if nothing of it is left to send: ``done`` when every contact of
        its audience has a final delivery on each of its channels (where its address is not
        suppressed), else ``partial``. None
        (it stays as it is) while some delivery is not final."""
        ask = self._context.ask
        planned, unfinished, waiting = await ask(lambda: self.ledger.planned(record.id,
                                                                             self.clock()))
        if unfinished:
            return None
        suppressed = await ask(self.ledger.suppressed)
        complete = all(contact.id in planned.get(channel.value, ())
                       for channel in notice.channels for contact in self.audience(notice)
                       if (address := contact.address(channel))
                       and address not in suppressed.get(channel.value, ()))
        state = NoticeState.DONE if complete and not waiting else NoticeState.PARTIAL
        stale = record.state != state.value or record.finished_at is None
        if stale and not await ask(lambda: self.ledger.settle_notice(record.id, state,
                                                                     self.clock())):
            return None  # a report asked for another attempt meanwhile
        return state

    async def _live_deadline(self, notice: Notice, natural: Deadline) -> Deadline:
        """The notice's deadline as the ledger has the night now: sooner than ``natural``
        once the window left its slot or the work it tells of was reported done."""
        window = notice.window
        active = (await self.ledger.active_slots()).get(window.id, PLANNED)
        work = work_of(window, notice.slot, await self.ledger.work_reports())
        return live_deadline(natural, notice, active, work, self.clock())

    async def close(self) -> None:
        """Stop what the strategies started (the fax renderer's worker processes)."""
        for strategy in self._strategies.values():
            await strategy.close()

    async def _run_channel(self, notice: Notice, record: NoticeRecord, channel: Channel,
                           deadline: Deadline, committer: GroupCommit,
                           live: Callable[[], Awaitable[Deadline]]) -> None:
        settings = self.inputs.config.channels[channel]
        strategy = self._strategies[channel]
        await strategy.backend.start()
        lane = Lane(settings, RateLimiter(settings.rate_per_second, self.clock, self.sleep),
                    self.inputs.config.settings.lease_seconds)
        breaker = Breaker(self.inputs.config.retry, self.clock, self.draw,
                          self._context.outage_hook(channel))
        run = ChannelRun(notice, record, lane, breaker, strategy, deadline,
                         escalating=self._bases.get(notice.key), live_deadline=live)
        workers = [asyncio.create_task(self._deliverer.work(run, committer))
                   for _ in range(settings.concurrency)]
        renewer = asyncio.create_task(self._claims.renew_leases(run))
        cancelled = False
        try:
            # A provider that confirms later may hand deliveries back for another attempt;
            # then they are claimed again.
            await self._claims.claim_loop(run)
            while strategy.confirms_later and await self._claims.confirm_loop(run):
                await self._claims.claim_loop(run)
        except asyncio.CancelledError:  # Ctrl-C: stop as a stop does, not after the queue
            cancelled = True
            raise
        finally:
            stopped = cancelled or self.stopping.is_set()
            unstarted = lane.take_unstarted() if stopped else []
            for _ in workers:
                lane.queue.put_nowait(None)
            await asyncio.gather(*workers)
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await self._claims.release(run, unstarted)
            breaker.leave()
