"""The daemon's Prometheus metrics at ``GET /metrics`` ([http] metrics, on by default):
what happens in the daemon (a notice's lateness, a reload, a ledger that does not answer)
counted as it happens, and the ledger's figures (deliveries, notices, queues, outages,
confirmations and the unreached of each active notice) read at each scrape, so a second
daemon's or an operator's sends are counted too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as CounterMetric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from dispatcher.clock import Clock
from dispatcher.ledger import ALERT_SEND_SECONDS, Ledger, NoticeRecord, failing
from dispatcher.schedule import Decision
from dispatcher.table import Channel, Inputs, active_slot

# How long after its slot's end a window's notices still count as active
ACTIVE_AFTER_END = timedelta(days=1)
LATENESS_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
UNFINISHED = ("pending", "sending")
ALERT_OUTCOMES = ("sent", "sending", "failed", "unsent")


class Metrics:
    """One registry per daemon (a test's second daemon does not see the first's)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lateness = Histogram(
            "dispatcher_notice_lateness_seconds",
            "How long after its time each notice the daemon sent began sending.",
            ["phase"], buckets=LATENESS_BUCKETS, registry=r)
        self.reload_seconds = Gauge(
            "dispatcher_reload_duration_seconds",
            "How long the last reading of an edit of the table took.", registry=r)
        self.reload_ok = Gauge(
            "dispatcher_reload_success",
            "1 if the last edit of the table was taken in, 0 if it was rejected.", registry=r)
        self.failures = CounterMetric(
            "dispatcher_notice_failures",
            "Sends of a notice by this daemon that failed before its deliveries could go "
            "(a message that cannot be rendered, a login refused, a ledger error), by phase.",
            ["phase"], registry=r)
        self.failing = Gauge(
            "dispatcher_notices_failing",
            "Notices not done whose last send by a daemon failed (`dispatcher status` says "
            "why and what to do).", registry=r)
        self.alerts = Gauge(
            "dispatcher_operator_alerts",
            "The operators' alerts to each address, by outcome: sent, sending, failed, "
            "unsent (claimed, its sender stopped).", ["state"], registry=r)
        self.ledger_errors = CounterMetric(
            "dispatcher_ledger_errors",
            "Looks at the ledger that failed because it did not answer.", registry=r)
        self.deliveries = Gauge(
            "dispatcher_deliveries", "Deliveries in the ledger, by channel and state.",
            ["channel", "state"], registry=r)
        self.notices = Gauge("dispatcher_notices", "Notices in the ledger, by state.",
                             ["state"], registry=r)
        self.queue = Gauge(
            "dispatcher_queue_depth",
            "Deliveries not yet handed over (pending or being sent), by channel.",
            ["channel"], registry=r)
        self.outages = Gauge(
            "dispatcher_provider_outages",
            "Provider outages ridden out and recorded, by channel.", ["channel"], registry=r)
        self.probes = Gauge(
            "dispatcher_provider_probes",
            "Probes of providers that were down, by channel.", ["channel"], registry=r)
        self.down = Gauge(
            "dispatcher_channel_down",
            "1 while this daemon's sends find the channel's provider not answering "
            "(probing it until it answers), 0 otherwise, by channel.", ["channel"], registry=r)
        self._down: Counter[str] = Counter()  # the sends that find each channel down
        for channel in Channel:
            self.down.labels(channel.value).set(0)
        active = ["window", "notice"]
        self.contacts = Gauge(
            "dispatcher_notice_contacts",
            "Contacts each active notice went to.", active, registry=r)
        self.unreached = Gauge(
            "dispatcher_notice_unreached",
            "Contacts of each active notice that no delivery has reached yet.", active,
            registry=r)
        self.confirmed = Gauge(
            "dispatcher_notice_confirmed",
            "Contacts that confirmed each active notice.", active, registry=r)

    def provider_down(self, channel: Channel, down: bool) -> None:
        """A send found ``channel``'s provider not answering (True), or answering again or
        no longer asked (False); the channel is down while any send finds it so."""
        self._down[channel.value] += 1 if down else -1
        self.down.labels(channel.value).set(1 if self._down[channel.value] > 0 else 0)

    def notice_failed(self, decision: Decision) -> None:
        self.failures.labels(decision.phase.value).inc()

    def reloaded(self, seconds: float, taken: bool) -> None:
        self.reload_seconds.set(seconds)
        self.reload_ok.set(1 if taken else 0)

    def endpoint(self, ledger: Ledger, inputs: Callable[[], Awaitable[Inputs]], clock: Clock
                 ) -> Callable[[Request], Awaitable[Response]]:
        """The ``/metrics`` handler: the ledger read now, then the registry's text."""
        async def metrics(_: Request) -> Response:
            await self.read_ledger(ledger, await inputs(), clock())
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
        return metrics

    async def read_ledger(self, ledger: Ledger, inputs: Inputs, now: datetime) -> None:
        counts = await ledger.counts(None)
        _set_all(self.deliveries, counts.items())
        queued: Counter[tuple[str, ...]] = Counter()
        for (channel, state), n in counts.items():
            if state in UNFINISHED:
                queued[(channel,)] += n
        _set_all(self.queue, queued.items())
        states_by_key = await ledger.notice_states()
        states = Counter((state.value,) for state in states_by_key.values())
        _set_all(self.notices, states.items())
        self.failing.set(len(failing(await ledger.notice_failures(), states_by_key,
                                     await ledger.active_slots())))
        alerts = await ledger.alert_counts(now - ALERT_SEND_SECONDS)
        _set_all(self.alerts, [((state,), alerts[state]) for state in ALERT_OUTCOMES])
        outages = await ledger.outage_totals()
        _set_all(self.outages, [((c,), n) for c, (n, _) in outages.items()])
        _set_all(self.probes, [((c,), p) for c, (_, p) in outages.items()])
        await self._read_active(ledger, inputs, now)

    async def _read_active(self, ledger: Ledger, inputs: Inputs, now: datetime) -> None:
        grace = timedelta(minutes=inputs.config.receipts.grace_minutes)
        contacts: dict[tuple[str, ...], int] = {}
        unreached: dict[tuple[str, ...], int] = {}
        confirmed: dict[tuple[str, ...], int] = {}
        for record in await _active_notices(ledger, inputs, now):
            labels = (record.window_id, record.phase)
            named = set(await ledger.contacts_named(record.id))
            reached = await ledger.contacts_reached(record.id, now - grace)
            contacts[labels] = len(named)
            unreached[labels] = len(named - reached)
            confirmed[labels] = len(await ledger.confirmations_of(record.id))
        _set_all(self.contacts, contacts.items())
        _set_all(self.unreached, unreached.items())
        _set_all(self.confirmed, confirmed.items())


async def _active_notices(ledger: Ledger, inputs: Inputs, now: datetime
                          ) -> list[NoticeRecord]:
    """The notices of each broadcast window's active slot, until a day after it ends."""
    active = await ledger.active_slots()
    found = []
    for window in inputs.config.windows:
        slot = active_slot(window, active)
        if not window.broadcast or now > slot.end + ACTIVE_AFTER_END:
            continue
        found += [n for n in await ledger.notices_of(window.id) if n.slot == slot.name]
    return found


def _set_all(gauge: Gauge, values: Iterable[tuple[tuple[str, ...], int]]) -> None:
    """The gauge's samples become exactly ``values`` (a label set gone is dropped)."""
    gauge.clear()
    for labels, value in values:
        gauge.labels(*labels).set(value)

