"""Never early, never stale, on the shipped project and the daemon's injected clock: a
notice sent by hand on some channels sends nothing else before its time, through provider
reports, daemon ticks and a retry; a call-out rings nobody before the work starts and
reaches the whole audience less the confirmed; the overrun notice stops at `done`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from dispatcher.demo import free_port
from dispatcher.ledger import DeliveryState, NoticeState, Report
from dispatcher.receipts.confirmations import confirm_by_hand
from dispatcher.send import (
    Backends,
    current_notice,
    make_backends,
    requeue_failed,
    retry_failed,
    send_now,
    send_session,
)
from dispatcher.table import (
    Channel,
    Phase,
    WorkReport,
    build_notice,
    find_window,
    in_audience,
    load_inputs,
)
from dispatcher.table import Report as Kind
from tests.helpers import (
    CONTACTS_HEADER,
    TOKYO,
    WINDOW_3,
    project_ledger,
    run_daemon_at,
    use_contacts,
)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    day = 18 if hour >= 12 else 19  # the night of 18–19 July 2021
    return datetime(2021, 7, day, hour, minute, second, tzinfo=TOKYO)


def on_email_and_sms(project: Path, extra: str = "") -> None:
    text = project.read_text(encoding="utf-8").replace('channels = ["fax", "email", "sms"]',
                                                       'channels = ["email", "sms"]', 1)
    project.write_text(text + extra, encoding="utf-8")


def outbox(project: Path, channel: str, tag: str) -> list[Path]:
    folder = project.parent / "var" / "outbox" / channel / f"{WINDOW_3}_planned_{tag}"
    return sorted(folder.glob("*")) if folder.exists() else []


async def hand_send(project: Path, channels: list[Channel], moment: datetime) -> None:
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    async with project_ledger(project) as ledger:
        notice = await current_notice(ledger, window, Phase.START)
        async with Backends(make_backends(inputs.config, channels, {})) as backends:
            await send_now(inputs, ledger, backends, notice, channels, "a", lambda: moment)


async def hand_retry(project: Path, moment: datetime) -> None:
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    async with project_ledger(project) as ledger:
        notice = await current_notice(ledger, window, Phase.START)
        requeued, channels = await requeue_failed(ledger, notice, False, lambda: moment)
        async with Backends(make_backends(inputs.config, channels, {})) as backends:
            await retry_failed(inputs, ledger, backends, notice, channels, requeued, "a",
                               lambda: moment)


async def start_notice_state(project: Path) -> str:
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", "start")
        assert record is not None
        return record.state


async def test_a_partial_send_by_hand_sends_nothing_else_before_the_notice_s_time(
        project: Path) -> None:
    """SMS by hand at 23:00; at 23:05 Twilio reports one unreachable (30003: try again);
    the daemon looks at 23:10 and 23:30, an operator retries at 23:20. No e-mail before
    AM1:00 (it used to go to every merchant at 23:10), every one at AM1:00."""
    on_email_and_sms(project)
    await hand_send(project, [Channel.SMS], at(23, 0))
    texts = len(outbox(project, "sms", "start"))
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", "start")
        assert record is not None and record.state == NoticeState.PARTIAL
        first = (await ledger.deliveries_of(record.id))[0]
        await ledger.apply_reports([Report(first.id, "twilio", "undelivered", "30003",
                                           "unreachable", "r-30003", DeliveryState.PENDING,
                                           at(23, 5))], at(23, 5))
    await run_daemon_at(project, at(23, 10))
    assert len(outbox(project, "sms", "start")) == texts  # the SMS tried again, in place
    await hand_retry(project, at(23, 20))
    await run_daemon_at(project, at(23, 30))
    assert outbox(project, "email", "start") == []
    assert await start_notice_state(project) == NoticeState.PARTIAL
    await run_daemon_at(project, at(1, 0))
    inputs = load_inputs(project)
    mailed = [c for c in in_audience(inputs.contacts, ("emoney",)) if c.email]
    assert len(outbox(project, "email", "start")) == len(mailed) > 0
    assert await start_notice_state(project) == NoticeState.DONE


ROWS = ("M1,店1,担当1,,m1@example.jp,090-1000-0001,emoney\n"
        "M2,店2,担当2,,m2@example.jp,090-1000-0002,emoney\n"
        "M3,店3,担当3,,,090-1000-0003,emoney\n")  # SMS only


def asking(port: int) -> str:
    return f"""
[http]
listen = "127.0.0.1:{port}"
public_url = "https://dispatcher.example.jp"

[confirm]
phases = ["start"]
callout_after = "15m"

[channels.voice]
backend = "outbox"
"""


async def called(project: Path) -> set[str]:
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", "start+voice")
        if record is None:
            return set()
        return {d.contact_id for d in await ledger.deliveries_of(record.id)}


async def test_a_call_out_rings_nobody_before_the_work_starts_and_then_all_unconfirmed(
        project: Path) -> None:
    """E-mail by hand at 23:00, call-out 15 minutes after the start notice: nobody is
    called at 23:20 (1 h 40 min before the work); at 01:16 everyone who has not confirmed
    is, the contact with no e-mail (whom the hand send never named) included."""
    on_email_and_sms(project, asking(free_port()))
    use_contacts(project, "")
    (project.parent / "contacts" / "test.csv").write_text(CONTACTS_HEADER + ROWS,
                                                          encoding="utf-8")
    await hand_send(project, [Channel.EMAIL], at(23, 0))
    await run_daemon_at(project, at(23, 20))
    assert await called(project) == set()
    await run_daemon_at(project, at(1, 0))  # the rest of the start notice, at its time
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", "start")
        assert record is not None
        await confirm_by_hand(ledger, None, record, "M1", "helpdesk", at(1, 5))
    await run_daemon_at(project, at(1, 14))
    assert await called(project) == set()
    await run_daemon_at(project, at(1, 16))
    assert await called(project) == {"M2", "M3"}


class SlowNight:
    """The clock of a send that waits 10 s between messages (a rate), on which an operator
    reports `done` at ``done_at``; the lease renewer's waits do not move it."""

    def __init__(self, now: datetime, done_at: datetime, project: Path) -> None:
        self.now, self.done_at, self.project = now, done_at, project
        self.handed_at_done: int | None = None

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + timedelta(seconds=max(seconds, 0.001))
        task = asyncio.current_task()
        if task is not None and task.get_coro().__qualname__.endswith(".renew_leases"):
            while self.now < until:
                await asyncio.sleep(0.001)
            return
        self.now = max(self.now, until)
        if self.now >= self.done_at and self.handed_at_done is None:
            self.handed_at_done = len(outbox(self.project, "email", "overrun"))
            async with project_ledger(self.project) as ledger:
                await ledger.record_report(WorkReport(WINDOW_3, "planned", Kind.DONE, 1,
                                                      self.now, self.now, "", "a"))
        await asyncio.sleep(0)


async def test_the_overrun_notice_stops_at_done(project: Path) -> None:
    """The overrun notice at 02:01, e-mail at one message per 10 s; `done` at 02:03. What
    was not handed over by then expires, saying why; one message at most was in flight."""
    on_email_and_sms(project)
    text = project.read_text(encoding="utf-8").replace(
        '[channels.email]\n', '[channels.email]\nconcurrency = 1\nrate_per_second = 0.1\n', 1)
    project.write_text(text, encoding="utf-8")
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    night = SlowNight(at(2, 1), at(2, 3), project)
    notice = build_notice(window, window.planned, Phase.OVERRUN)
    async with project_ledger(project) as ledger:
        channels = [Channel.EMAIL, Channel.SMS]
        async with Backends(make_backends(inputs.config, channels, {})) as backends:
            await send_session(inputs, ledger, backends, notice, channels, "schedule",
                               night.clock, sleep=night.sleep, release_at=at(2, 1))
        record = await ledger.notice(WINDOW_3, "planned", "overrun")
        assert record is not None
        deliveries = [d for d in await ledger.deliveries_of(record.id) if d.channel == "email"]
    states = [d.state for d in deliveries]
    handed = len(outbox(project, "email", "overrun"))
    assert night.handed_at_done is not None and night.handed_at_done > 0
    assert states.count("sent") == handed <= night.handed_at_done + 1, states
    expired = [d for d in deliveries if d.state == "expired"]
    assert len(expired) == len(deliveries) - handed > 10
    assert all(d.last_error == "the work was reported done" for d in expired)
