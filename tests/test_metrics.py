"""Prometheus metrics: `GET /metrics` on the daemon's [http] server parses, counts the
deliveries by channel and state after a send, and gives every metric a help text; the
daemon's own events (lateness, reloads, ledger errors) are counted as they happen."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.daemon import Daemon
from dispatcher.demo import free_port
from tests.helpers import (
    TOKYO,
    Cli,
    configure,
    deliveries,
    serving,
    smtp_channel,
    still_daemon,
    tick_after_edit,
    timed_window,
    use_contacts,
)
from tests.servers import smtp_server

SEED_START = datetime(2021, 7, 19, 1, 0, tzinfo=TOKYO)
METRICS = {"dispatcher_deliveries", "dispatcher_notices", "dispatcher_queue_depth",
           "dispatcher_notice_lateness_seconds", "dispatcher_provider_outages",
           "dispatcher_provider_probes", "dispatcher_reload_duration_seconds",
           "dispatcher_reload_success", "dispatcher_ledger_errors",
           "dispatcher_notice_contacts", "dispatcher_notice_unreached",
           "dispatcher_notice_confirmed", "dispatcher_channel_down",
           "dispatcher_notice_failures", "dispatcher_notices_failing",
           "dispatcher_operator_alerts"}


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Each family's samples by their sorted labels; the families' help texts checked."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=")
        text = reply.read().decode()
    families = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation.strip(), family.name  # every metric says what it is
        for sample in family.samples:
            families.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
        families.setdefault(family.name, {})
    return families


def test_metrics_count_the_deliveries_of_a_send_by_channel_and_state(
        cli: Cli, project: Path) -> None:
    soon = datetime.now(TOKYO).replace(tzinfo=None, microsecond=0) + timedelta(hours=1)
    timed_window(project, soon, soon + timedelta(hours=1), None)
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    made = asyncio.run(deliveries(project))
    sent = Counter((d.channel, d.state) for d in made)
    with serving(project, "run", "http listening") as port:
        found = scrape(port)
    assert {name.removesuffix("_total") for name in found} >= METRICS
    assert {(dict(labels)["channel"], dict(labels)["state"]): value for labels, value
            in found["dispatcher_deliveries"].items()} == sent
    notice = (("notice", "start"), ("window", "2021-07-19-emoney"))
    contacts = len({d.contact_id for d in made})
    assert found["dispatcher_notice_contacts"][notice] == contacts
    # sent a moment ago: not yet past the grace period that makes "sent" reached
    assert found["dispatcher_notice_unreached"][notice] == contacts
    assert found["dispatcher_notice_confirmed"][notice] == 0
    assert found["dispatcher_notices"][(("state", "done"),)] == 1
    assert found["dispatcher_queue_depth"] == {}  # nothing waits
    assert set(found["dispatcher_channel_down"].values()) == {0}  # every provider answered
    assert found["dispatcher_notices_failing"] == {(): 0}
    assert set(found["dispatcher_operator_alerts"].values()) == {0}  # none was due


def test_metrics_can_be_turned_off(project: Path) -> None:
    with serving(project, "run", "http listening", http="metrics = false\n") as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=60) as up:
            assert up.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60)
    assert refused.value.code == 404


async def test_the_daemon_counts_a_notice_s_lateness_and_each_reload(project: Path) -> None:
    use_contacts(project, "M1,店,,,m1@example.jp,,emoney\n")
    async with still_daemon(project, SEED_START + timedelta(seconds=30)) as daemon:
        samples = daemon.metrics.registry.get_sample_value
        assert samples("dispatcher_reload_success", {}) == 1  # the table read at the start
        await daemon.tick()
        await daemon.wait_for_sends()
        assert samples("dispatcher_notice_lateness_seconds_count", {"phase": "start"}) == 1
        assert samples("dispatcher_notice_lateness_seconds_sum", {"phase": "start"}) == 30
        contacts = project.parent / "contacts" / "test.csv"
        # two bad rows of three: more than a file may set aside, the edit is refused
        contacts.write_text(contacts.read_text(encoding="utf-8") + "M2,店2,,,not-mail,,\n"
                            "M3,店3,,,not-mail,,\n", encoding="utf-8")
        await tick_after_edit(daemon)
        assert samples("dispatcher_reload_success", {}) == 0
        contacts.write_text(contacts.read_text(encoding="utf-8").replace(
            "M2,店2,,,not-mail", "M2,店2,,,m2@example.jp").replace(
            "M3,店3,,,not-mail", "M3,店3,,,m3@example.jp"), encoding="utf-8")
        await tick_after_edit(daemon)
        assert samples("dispatcher_reload_success", {}) == 1
        reload_seconds = samples("dispatcher_reload_duration_seconds", {})
        assert reload_seconds is not None and reload_seconds > 0
    assert [d.state for d in await deliveries(project)] == ["sent"]


async def test_a_channel_is_down_while_its_provider_does_not_answer(project: Path) -> None:
    """Live, not once the outage is over: the SMTP server is not there when the start
    notice goes, then it comes up, and the e-mail is sent."""
    port = free_port()
    soon = datetime.now(TOKYO).replace(tzinfo=None, microsecond=0)
    configure(project, smtp_channel(port),
              "\n[retry]\ninitial_delay_seconds = 0.05\nmax_delay_seconds = 0.5\n")
    timed_window(project, soon, soon + timedelta(hours=1), None)
    use_contacts(project, "M1,店,,,m1@example.jp,,emoney\n")
    daemon = Daemon(project, lambda: datetime.now(UTC))
    await daemon.open()
    try:
        samples = daemon.metrics.registry.get_sample_value
        assert samples("dispatcher_channel_down", {"channel": "email"}) == 0
        await daemon.tick()
        await wait_until(lambda: samples("dispatcher_channel_down", {"channel": "email"}) == 1,
                         "the channel seen down")
        assert samples("dispatcher_channel_down", {"channel": "sms"}) == 0
        with smtp_server(port=port) as (sink, _, _):
            await wait_until(lambda: len(sink) == 1, "the e-mail once the server is up")
            await daemon.wait_for_sends()
        assert samples("dispatcher_channel_down", {"channel": "email"}) == 0
    finally:
        await daemon.close()
    assert {d.state for d in await deliveries(project)} == {"sent"}


async def wait_until(condition: Callable[[], bool], what: str, seconds: float = 300) -> None:
    """Polls ``condition`` without holding the event loop the daemon sends on; the bound is
    against a hang, never a measure of speed."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"waited {seconds} s for {what}"
        await asyncio.sleep(0.05)
