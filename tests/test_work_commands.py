"""`done`, `extend` and `update` from the command line, on a window whose work is under
way now: each report is refused with exit 2 when it does not apply, and otherwise
recorded once and its notice sent once to the whole audience."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.cli.app import parse_later_moment
from dispatcher.errors import ArgumentError
from dispatcher.table import jp_clock
from tests.helpers import TOKYO, WINDOW_3, Cli, timed_window

EMAILS, TEXTS = 28, 26  # window 3's audience with an e-mail address, with a mobile number


@pytest.fixture
def under_way(project: Path) -> tuple[Path, datetime]:
    """Window 3 began ten minutes ago and ends in fifty (the end waits for `done`)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    timed_window(project, start, start + timedelta(hours=1), None)
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('notify = "broadcast"',
                                    'notify = "broadcast"\nend_notice = "confirmed"', 1),
                       encoding="utf-8")
    return project, start + timedelta(hours=1)


def outbox(project: Path, channel: str, tag: str) -> list[str]:
    folder = project.parent / "var" / "outbox" / channel / f"{WINDOW_3}_planned_{tag}"
    return sorted(p.read_text(encoding="utf-8") for p in folder.glob("*")) if folder.exists() \
        else []


def test_done_before_the_start_notice_is_refused_and_records_nothing(
        cli: Cli, under_way: tuple[Path, datetime]) -> None:
    project, _ = under_way
    refused = cli("done", "3", "--yes", "-c", str(project))
    assert refused.code == 2
    assert "window 3's work has not started in planned" in refused.err
    assert "Traceback" not in refused.err
    assert not (project.parent / "var" / "outbox").exists()


def test_update_extend_and_done_each_send_their_notice_once(
        cli: Cli, under_way: tuple[Path, datetime]) -> None:
    project, end = under_way
    assert cli("send", "3", "start", "--channel", "email", "--channel", "sms", "--yes",
               "-c", str(project)).code == 0

    text = "作業は順調に進んでおります。"
    updated = cli("update", "3", "--text", text, "--channel", "sms", "--yes", "-c", str(project))
    assert updated.code == 0, updated.err
    texts = outbox(project, "sms", "update-1")
    assert len(texts) == TEXTS and all(text in t for t in texts)
    assert outbox(project, "email", "update-1") == []  # only the channel asked for

    later = end + timedelta(minutes=30)
    earlier = cli("extend", "3", "--until", (end - timedelta(minutes=5)).isoformat(),
                  "--yes", "-c", str(project))
    assert earlier.code == 2 and "--until" in earlier.err
    extended = cli("extend", "3", "--until", later.isoformat(), "--reason", "DB 移行",
                   "--yes", "-c", str(project))
    assert extended.code == 0, extended.err
    new_end = jp_clock(later.astimezone(TOKYO))
    mails = outbox(project, "email", "extended-1")
    assert len(mails) == EMAILS and len(outbox(project, "sms", "extended-1")) == TEXTS
    window3 = json.loads(cli("windows", "--json", "-c", str(project)).out)[2]
    assert datetime.fromisoformat(window3["slots"][0]["end"]) == later
    assert (window3["work"]["state"], window3["work"]["extensions"]) == ("extended", 1)
    assert window3["next_notice"]["phase"] == "overrun"  # the end waits for done

    done = cli("done", "3", "--yes", "-c", str(project))
    assert done.code == 0, done.err
    assert len(outbox(project, "email", "end")) == EMAILS
    again = cli("done", "3", "--yes", "-c", str(project))
    assert again.code == 2 and "was reported done" in again.err
    late = cli("extend", "3", "--until", (later + timedelta(hours=1)).isoformat(), "--yes",
               "-c", str(project))
    assert late.code == 2 and "was reported done" in late.err

    status = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
    phases = [n["phase"] for n in status["notices"]]
    assert phases == ["start", "update-1", "extended-1", "end"]
    assert all(n["state"] == "done" for n in status["notices"])
    work = status["work"]
    assert work["state"] == "completed" and work["ended_at"] is not None
    assert [(r["phase"], r["text"]) for r in work["reports"]] == [
        ("update-1", text), ("extended-1", "DB 移行"), ("done", "")]
    shown = cli("status", "3", "-c", str(project)).out
    assert "work (planned): completed, ended" in shown and "update-1 by" in shown
    sms = outbox(project, "sms", "extended-1")[0]
    assert new_end in sms and "延長" in sms

    unnamed = cli("retry", "3", "update", "-c", str(project))
    assert unnamed.code == 2 and "--number" in unnamed.err and "it has 1" in unnamed.err
    named = cli("retry", "3", "update", "--number", "1", "-c", str(project))
    assert named.code == 0 and "0 deliveries to try again" in named.out
    again = cli("send", "3", "end", "--yes", "-c", str(project))  # after done: its text
    assert again.code == 0 and "nothing new to send" in again.out


def test_an_update_is_previewed_with_its_text_as_data(cli: Cli, project: Path) -> None:
    missing = cli("preview", "3", "update", "--json", "-c", str(project))
    assert missing.code == 2 and "--text" in missing.err
    text = "<b>{{ sender.service }}</b> 作業中"
    shown = cli("preview", "3", "update", "--text", text, "--json", "--contact", "M0001",
                "--out", str(project.parent / "pv"), "-c", str(project))
    assert shown.code == 0, shown.err
    by_channel = {item["channel"]: item for item in json.loads(shown.out)}
    assert "&lt;b&gt;{{ sender.service }}&lt;/b&gt; 作業中" in by_channel["fax"]["body"]
    assert text in by_channel["sms"]["body"]  # never template code: the braces stay


def test_until_takes_a_time_of_day_as_the_next_one_after_the_end_in_force() -> None:
    end = datetime(2021, 7, 19, 2, 0, tzinfo=TOKYO)
    assert parse_later_moment("02:30", end, TOKYO, "--until") == end + timedelta(minutes=30)
    assert parse_later_moment("2:30", end.astimezone(UTC), TOKYO, "--until") == (
        end + timedelta(minutes=30))
    # 01:00 is past at AM2:00: the next one, tomorrow's (an end after midnight: 翌AM1:00)
    assert parse_later_moment("01:00", end, TOKYO, "--until") == datetime(
        2021, 7, 20, 1, 0, tzinfo=TOKYO)
    assert parse_later_moment("2021-07-19T03:00", end, TOKYO, "--until") == datetime(
        2021, 7, 19, 3, 0, tzinfo=TOKYO)
    with pytest.raises(ArgumentError, match="--until: '25:00' is not an ISO-8601"):
        parse_later_moment("25:00", end, TOKYO, "--until")


def test_extend_until_a_time_of_day(cli: Cli, under_way: tuple[Path, datetime]) -> None:
    project, end = under_way
    assert cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project)).code == 0
    later = (end + timedelta(minutes=30)).astimezone(TOKYO)
    extended = cli("extend", "3", "--until", f"{later:%H:%M}", "--yes", "-c", str(project))
    assert extended.code == 0, extended.err
    window3 = json.loads(cli("windows", "--json", "-c", str(project)).out)[2]
    assert datetime.fromisoformat(window3["work"]["end"]) == later.replace(second=0,
                                                                           microsecond=0)


def test_a_too_long_update_is_one_error_saying_how_much_to_cut(
        cli: Cli, under_way: tuple[Path, datetime]) -> None:
    project, _ = under_way
    assert cli("send", "3", "start", "--channel", "sms", "--yes", "-c", str(project)).code == 0
    refused = cli("update", "3", "--text", "データ移行の最終確認を行っております。" * 6,
                  "--yes", "-c", str(project))
    assert refused.code == 2 and "Traceback" not in refused.err
    lines = [line for line in refused.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, refused.err  # one per contact before: 26 lines here
    assert "--text: too long for an SMS of 2 segments" in lines[0]
    assert f"for {TEXTS} contact(s)" in lines[0] and "the limit 134: shorten it by" in lines[0]
    assert outbox(project, "sms", "update-1") == []
