"""The advance notice and the reminders: configured per channel and per window, sent by
hand like any notice, exactly once, and shown by `status`."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.ledger import NoticeState
from dispatcher.table import find_window, jp_lead, lead_text, load_config, parse_lead
from tests.helpers import Cli, project_ledger, run_daemon_at, timed_window

W3_ID = "2021-07-19-emoney"


def test_lead_times_read_and_write_back() -> None:
    assert parse_lead("72h") == timedelta(hours=72)
    assert parse_lead(" 30m ") == timedelta(minutes=30)
    assert lead_text(timedelta(minutes=90)) == "90m" and lead_text(timedelta(days=3)) == "72h"
    assert jp_lead(timedelta(hours=72)) == "3日" and jp_lead(timedelta(hours=24)) == "24時間"
    assert jp_lead(timedelta(minutes=90)) == "1時間30分"


def test_a_window_overrides_the_leads_and_the_advance_notice(project: Path) -> None:
    text = project.read_text(encoding="utf-8").replace(
        'audience = ["emoney"]',
        'audience = ["emoney"]\nannounce_days_before = 7\n'
        '[windows.reminders]\nsms = ["30m", "2h"]\nfax = []', 1)
    project.write_text(text, encoding="utf-8")
    window = find_window(load_config(project).windows, "3")
    assert window.announce_before == timedelta(days=7)
    assert window.reminder_leads == (timedelta(hours=24), timedelta(hours=2),
                                     timedelta(minutes=30))
    assert window.reminder_channels(timedelta(hours=24)) == ("email",)
    assert window.reminder_channels(timedelta(minutes=30)) == ("sms",)


def test_a_reminder_is_sent_by_hand_once_on_its_own_channels(cli: Cli, project: Path) -> None:
    first = cli("send", "3", "reminder", "--lead", "1h", "--yes", "-c", str(project))
    assert first.code == 0, first.err
    again = cli("send", "3", "reminder", "--lead", "1h", "--yes", "-c", str(project))
    assert again.code == 0, again.err
    outbox = project.parent / "var" / "outbox"
    texts = list((outbox / "sms" / f"{W3_ID}_planned_reminder-1h").glob("*.txt"))
    assert len(texts) == 26 and "1時間後" in texts[0].read_text(encoding="utf-8")
    assert not (outbox / "email").exists() and not (outbox / "fax").exists()
    status = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
    [notice] = status["notices"]
    assert notice["phase"] == "reminder-1h" and notice["channels"] == {"sms": {"sent": 26}}
    windows = json.loads(cli("windows", "--json", "-c", str(project)).out)
    assert windows[2]["notices"] == {"reminder-1h": "done"}


def test_a_reminder_needs_one_of_the_windows_lead_times(cli: Cli, project: Path) -> None:
    missing = cli("send", "3", "reminder", "--yes", "-c", str(project))
    assert missing.code == 2
    assert "--lead: which reminder of window 3? Give --lead (it has 72h, 24h, 1h)" in missing.err
    unknown = cli("preview", "3", "reminder", "--lead", "2h", "-c", str(project))
    assert unknown.code == 2 and "window 3 has no 2h reminder (it has 72h, 24h, 1h)" in unknown.err
    malformed = cli("send", "3", "reminder", "--lead", "soon", "--yes", "-c", str(project))
    assert malformed.code == 2 and "'soon' is not a lead time" in malformed.err
    wrong_channel = cli("send", "3", "reminder", "--lead", "1h", "--channel", "fax", "--yes",
                        "-c", str(project))
    assert wrong_channel.code == 2 and "does not go out on fax" in wrong_channel.err
    assert not (project.parent / "var" / "outbox").exists()


def test_the_advance_notice_previews_on_every_channel(cli: Cli, project: Path) -> None:
    result = cli("preview", "3", "announce", "--json", "--contact", "M0001",
                 "--out", str(project.parent / "pv"), "-c", str(project))
    assert result.code == 0, result.err
    messages = {m["channel"]: m for m in json.loads(result.out)}
    assert set(messages) == {"fax", "email", "sms"}
    assert messages["fax"]["pages"] == 1
    assert messages["email"]["subject"] == "【J-Mups】メンテナンス実施のご案内（2021年7月19日(月)）"
    assert "予備日: 2021年8月23日(月) AM1:00～AM2:00" in messages["email"]["body"]
    assert "予備日8/23(月)" in messages["sms"]["body"]


def reminders_sent(project: Path, slot: str = "planned") -> int:
    folder = project.parent / "var" / "outbox" / "sms" / f"{W3_ID}_{slot}_reminder-1h"
    return len(list(folder.glob("*.txt")))


async def test_a_daemon_down_across_the_reminder_sends_it_late_or_records_it_missed(
        project: Path, tmp_path: Path) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    timed_window(project, base + timedelta(hours=1), base + timedelta(hours=2), None)
    twin = tmp_path / "twin"
    shutil.copytree(project.parent, twin)
    # back 20 minutes after the 1-hour reminder's time: still worth sending
    await run_daemon_at(project, base + timedelta(minutes=20))
    assert reminders_sent(project) == 26
    # back 40 minutes after it: more than half its lead late, so recorded and not sent
    await run_daemon_at(twin / "config.toml", base + timedelta(minutes=40))
    assert reminders_sent(twin / "config.toml") == 0
    async with project_ledger(twin / "config.toml") as ledger:
        states = await ledger.notice_states()
    assert states[f"{W3_ID}/planned/reminder-1h"] is NoticeState.MISSED


async def test_a_postponement_after_a_reminder_arms_the_reserve_slots_own(
        project: Path, cli: Cli) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    timed_window(project, base + timedelta(hours=1), base + timedelta(hours=2), None)
    await run_daemon_at(project, base)  # the 1-hour reminder goes
    assert reminders_sent(project) == 26
    postponed = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes",
                                        "-c", str(project))
    assert postponed.code == 0, postponed.err
    reserve_reminder = base + timedelta(days=30)
    await run_daemon_at(project, reserve_reminder)
    assert reminders_sent(project, "reserve-2030-01-31-1000") == 26
    assert reminders_sent(project) == 26  # the planned slot's was not sent again
