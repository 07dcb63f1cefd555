"""When a notice is done: exactly when every delivery of every one of its channels is final,
across its whole audience as planned now; a partial send by hand finishes nothing, and no
notice is left `sending` with nothing in flight."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from dispatcher.ledger import NoticeState
from dispatcher.send import Backend, Outgoing, Receipt, SendingRun, send_notice
from dispatcher.table import Channel, Phase, build_notice, find_window, load_inputs
from tests.helpers import (
    TOKYO,
    WINDOW_3,
    Cli,
    deliveries,
    project_ledger,
    run_daemon_at,
    still_daemon,
    use_contacts,
)

START_KEY = f"{WINDOW_3}/planned/start"
SEED_START = datetime(2021, 7, 19, 1, 0, tzinfo=TOKYO)


async def notice_state(project: Path, phase: str = "start") -> str | None:
    async with project_ledger(project) as ledger:
        record = await ledger.notice(WINDOW_3, "planned", phase)
    return None if record is None else record.state


def by_channel(records: list[object]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        channel = str(getattr(record, "channel"))  # noqa: B009
        counts[channel] = counts.get(channel, 0) + 1
    return counts


async def test_an_email_only_send_by_hand_leaves_fax_and_sms_to_the_daemon_at_the_start(
        cli: Cli, project: Path) -> None:
    sent = await asyncio.to_thread(cli, "send", "3", "start", "--channel", "email", "--yes",
                                   "-c", str(project))
    assert sent.code == 0, sent.err
    assert "partial" in sent.out
    assert await notice_state(project) == NoticeState.PARTIAL
    assert by_channel(list(await deliveries(project))) == {"email": 28}

    async with still_daemon(project, SEED_START - timedelta(minutes=2)) as early:
        decisions = await early.tick()  # before AM1:00 the rest only waits for its time
        # (decisions, not the scheduler's jobs: a job dated 2021 fires at once in real time)
        assert [d.action.value for d in decisions if d.key == START_KEY] == ["schedule"]
        await early.wait_for_sends()
    assert by_channel(list(await deliveries(project))) == {"email": 28}

    await run_daemon_at(project, SEED_START + timedelta(seconds=1))
    records = await deliveries(project)
    assert by_channel(list(records)) == {"email": 28, "fax": 27, "sms": 26}
    assert {r.state for r in records} == {"sent"}
    assert await notice_state(project) == NoticeState.DONE


async def test_the_rest_of_a_partial_notice_past_its_time_is_recorded_missed(
        cli: Cli, project: Path) -> None:
    sent = await asyncio.to_thread(cli, "send", "3", "start", "--channel", "email", "--yes",
                                   "-c", str(project))
    assert sent.code == 0, sent.err
    await run_daemon_at(project, SEED_START + timedelta(hours=3))  # the work has ended
    assert await notice_state(project) == NoticeState.MISSED
    assert by_channel(list(await deliveries(project))) == {"email": 28}


def test_retrying_a_finished_notice_leaves_it_done(cli: Cli, project: Path) -> None:
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    retried = cli("retry", "3", "start", "-c", str(project))
    assert retried.code == 0, retried.err
    assert "0 deliveries to try again" in retried.out
    assert asyncio.run(notice_state(project)) == NoticeState.DONE
    status = cli("status", "3", "-c", str(project)).out
    # when, in the operator's time zone, as every time the operator reads
    assert re.search(r"start \(planned\): done, triggered by operator:\S+ at "
                     r"\d{4}年\d{1,2}月\d{1,2}日\(.\) [AP]M\d{1,2}:\d\d\n", status), status


def test_a_notice_whose_audience_has_no_address_on_its_channels_is_done(
        cli: Cli, project: Path) -> None:
    use_contacts(project, "M1,店,,,m1@example.jp,,emoney\n")
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('channels = ["fax", "email", "sms"]', 'channels = ["fax"]'),
                       encoding="utf-8")
    sent = cli("send", "3", "start", "--yes", "-c", str(project))
    assert sent.code == 0, sent.err
    assert asyncio.run(notice_state(project)) == NoticeState.DONE


class _StopOnSend(Backend):
    """Asks the sender to stop while it hands over the message: a SIGTERM landing just as
    the last outcome is written."""

    name: ClassVar[str] = "stop-on-send"

    def __init__(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping

    async def send(self, outgoing: Outgoing) -> Receipt:
        self._stopping.set()
        return Receipt(f"ok-{outgoing.delivery_id}")


async def test_a_stop_as_the_last_outcome_is_written_still_finishes_the_notice(
        project: Path) -> None:
    use_contacts(project, "M1,店,,,m1@example.jp,,emoney\n")
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    notice = build_notice(window, window.planned, Phase.START)
    stopping = asyncio.Event()
    async with project_ledger(project) as ledger:
        sending = SendingRun(inputs, ledger, {Channel.EMAIL: _StopOnSend(stopping)},
                             lambda: datetime.now(UTC), stopping=stopping)
        result = await send_notice(sending, notice, [Channel.EMAIL], "test")
    assert stopping.is_set()
    assert result.counts == {("email", "sent"): 1}
    assert result.notice.state == NoticeState.DONE


class _LooksAtTheNotice(Backend):
    """Reads the notice's state in the ledger as each message is handed over: what a
    daemon would find there if this sender died now."""

    name: ClassVar[str] = "looks-at-the-notice"

    def __init__(self, project: Path) -> None:
        self._project = project
        self.seen: list[str | None] = []

    async def send(self, outgoing: Outgoing) -> Receipt:
        phase = outgoing.notice_key.split("/")[-1]
        self.seen.append(await notice_state(self._project, phase))
        return Receipt(f"ok-{outgoing.delivery_id}")


async def test_a_notice_sent_by_hand_on_some_of_its_channels_holds_back_the_others(
        project: Path) -> None:
    """While the e-mail sent by hand goes, the notice is `sending` (its sender is at it),
    but its other channels are not released: a daemon resuming it after a crash sends the
    e-mail only, never the fax and SMS before the notice's time (the claim holds them
    back). Once the e-mail is done it is `partial`; on all its channels, `sending` while it
    goes and `done` after."""
    use_contacts(project, "M1,店,,0312345678,m1@example.jp,09011112222,emoney\n")
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    looking = _LooksAtTheNotice(project)
    async with project_ledger(project) as ledger:
        for phase, channels in ((Phase.START, [Channel.EMAIL]),
                                (Phase.END, list(window.channels))):
            sending = SendingRun(inputs, ledger, dict.fromkeys(channels, looking),
                                 lambda: datetime.now(UTC))
            await send_notice(sending, build_notice(window, window.planned, phase),
                              channels, "operator:test")
        start = await ledger.notice(window.id, "planned", "start")
        assert start is not None and start.state == NoticeState.PARTIAL
        releases = await ledger.releases_of(start.id)
    assert set(looking.seen) == {NoticeState.SENDING}
    assert len(looking.seen) == 1 + len(window.channels)
    assert releases["fax"] is None and releases["sms"] is None and releases["email"]
