"""The advance notice and the reminders: configured per channel and per window, sent by
hand like any notice, exactly once, and shown by `status`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from dispatcher.table import find_window, jp_lead, lead_text, load_config, parse_lead
from tests.helpers import Cli

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
