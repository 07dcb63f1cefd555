"""`dispatcher publish`: a page, a calendar and a feed from the same table and ledger state,
checked by independent parsers (vobject, feedparser) and against `windows --json`."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import icalendar
import vobject

from dispatcher.daemon import Daemon
from dispatcher.publish import Entry, PublishedState, entries, window_uid
from dispatcher.table import Report, WorkReport, load_config
from tests.helpers import BEFORE_EVERY_WINDOW, CHECK_AT, Cli, project_ledger, timed_window
from tests.helpers import WINDOW_3 as W3
from tests.servers import radicale_server

TOKYO = ZoneInfo("Asia/Tokyo")
BEFORE_ALL = "2021-05-01T09:00:00+09:00"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2021, 7, 19, hour, minute, tzinfo=TOKYO)


def publish(cli: Cli, project: Path, now: str = BEFORE_ALL) -> Path:
    out = project.parent / "public"
    result = cli("publish", "--out", str(out), "--now", now, "-c", str(project))
    assert result.code == 0, result.err
    return out


def events(out: Path) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical((out / "maintenance.ics").read_bytes())
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


def test_progress_follows_the_slot_and_the_reports(project: Path) -> None:
    config = load_config(project)

    def shown(now: datetime, reports: list[WorkReport] | None = None) -> Entry:
        found = entries(config, {}, now, {(W3, "planned"): reports or []})
        return next(e for e in found if e.window_id == W3)

    assert shown(at(0, 59)).progress is PublishedState.UPCOMING
    assert shown(at(1)).progress is PublishedState.IN_PROGRESS
    assert shown(at(2)).progress is PublishedState.COMPLETED  # its end is scheduled
    extended = WorkReport(W3, "planned", Report.EXTENDED, 1, at(1, 50), at(2, 30), "", "desk")
    entry = shown(at(2, 10), [extended])
    assert entry.progress is PublishedState.EXTENDED
    assert (entry.slot.end, entry.due_until) == (at(2, 30), at(2))
    done = WorkReport(W3, "planned", Report.DONE, 1, at(2, 20), at(2, 18), "", "desk")
    entry = shown(at(2, 20), [extended, done])
    assert (entry.progress, entry.slot.end, entry.ended_at) == (
        PublishedState.COMPLETED, at(2, 18), at(2, 18))
    assert Entry.from_snapshot(entry.snapshot()) == entry
    assert "due_until" not in shown(at(0)).snapshot()  # no report, the digest as before


def record(project: Path, report: WorkReport) -> None:
    async def write() -> None:
        async with project_ledger(project) as ledger:
            await ledger.record_report(report)
    asyncio.run(write())


def test_an_extension_and_done_move_the_calendar_end_and_its_sequence(
        cli: Cli, project: Path) -> None:
    uid = window_uid(W3)
    before = events(publish(cli, project, "2021-07-19T01:30:00+09:00"))[uid]
    record(project, WorkReport(W3, "planned", Report.EXTENDED, 1, at(1, 50), at(2, 30),
                               "DB 移行", "desk"))
    out = publish(cli, project, "2021-07-19T02:10:00+09:00")
    extended = events(out)[uid]
    assert extended.decoded("dtend") == at(2, 30)
    assert extended["sequence"] > before["sequence"]
    assert "延長: 終了予定を AM2:00 から AM2:30 に延長しました" in str(extended["description"])
    page = (out / "index.html").read_text(encoding="utf-8")
    assert re.search(r"作業中のメンテナンス.*延長中.*AM1:00～AM2:30", page, re.DOTALL)
    record(project, WorkReport(W3, "planned", Report.DONE, 1, at(2, 20), at(2, 18), "",
                               "desk"))
    out = publish(cli, project, "2021-07-19T02:25:00+09:00")
    ended = events(out)[uid]
    assert ended.decoded("dtend") == at(2, 18) and ended["sequence"] > extended["sequence"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert re.search(r"終了したメンテナンス.*AM2:18 に作業が終了しました", page, re.DOTALL)


def test_entries_of_a_postponed_window_name_the_planned_slot(project: Path) -> None:
    config = load_config(project)
    now = datetime(2021, 7, 1, tzinfo=TOKYO)
    [planned] = [e for e in entries(config, {}, now) if e.number == 3]
    [moved] = [e for e in entries(config, {"2021-07-19-emoney": "reserve-2021-08-23-0100"}, now)
               if e.number == 3]
    assert planned.moved_from is None and len(planned.reserves) == 1
    assert moved.slot == planned.reserves[0] and moved.moved_from == planned.slot
    assert moved.reserves == () and moved.slot.text == "2021年8月23日(月) AM1:00～AM2:00"


def test_the_three_files_agree_with_windows_json(cli: Cli, project: Path) -> None:
    out = publish(cli, project)
    table = json.loads(cli("windows", "--json", "-c", str(project)).out)
    by_uid = events(out)
    feed = feedparser.parse((out / "feed.atom").read_bytes())
    page = (out / "index.html").read_text(encoding="utf-8")
    assert not feed.bozo, feed.get("bozo_exception")
    assert len(by_uid) == len(feed.entries) == len(table) == 4
    feed_ids = {e.id for e in feed.entries}
    for row in table:
        [slot] = [s for s in row["slots"] if s["name"] == row["active_slot"]]
        event = by_uid[window_uid(row["id"])]
        assert event.decoded("dtstart") == datetime.fromisoformat(slot["start"])
        assert event.decoded("dtend") == datetime.fromisoformat(slot["end"])
        assert event["summary"] == row["title"] and event["status"] == "CONFIRMED"
        assert window_uid(row["id"]) in feed_ids
        assert f'id="{row["id"]}"' in page
    assert "2021年7月19日(月) AM1:00～AM2:00" in page
    assert "2021年5月30日(日) PM10:30～翌AM3:00" in page  # crosses midnight: 翌
    assert "予備日" in page and "0120-220-766" in page and "<script" not in page


def test_the_calendar_passes_an_independent_validator(cli: Cli, project: Path) -> None:
    text = (publish(cli, project) / "maintenance.ics").read_text(encoding="utf-8")
    parsed = vobject.readOne(text, validate=True)
    assert parsed.validate()
    assert len(parsed.vevent_list) == 4
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text
    assert "X-PUBLISHED-TTL:PT1H" in text
    assert "BEGIN:VTIMEZONE" in text and "TZID:Asia/Tokyo" in text
    # METHOD:PUBLISH wants an ORGANIZER in each event (RFC 5546 §3.2.1): the help desk,
    # at the address the notices are mailed from ([helpdesk] has no e-mail here)
    organizers = {(event.organizer.value, event.organizer.params["CN"][0])
                  for event in parsed.vevent_list}
    assert organizers == {("mailto:maintenance@j-mups.example.jp", "J-Mups ヘルプデスク")}


def test_postponing_raises_the_sequence_and_keeps_the_uid(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    uid = window_uid("2021-07-19-emoney")
    before = events(publish(cli, project))[uid]
    again = events(publish(cli, project))[uid]
    assert again["sequence"] == before["sequence"]
    assert again.decoded("dtstamp") == before.decoded("dtstamp")  # nothing changed

    cli_at(BEFORE_EVERY_WINDOW)
    assert cli("postpone", "3", "--no-notice", "--yes", "-c", str(project)).code == 0
    out = publish(cli, project, "2021-06-01T09:00:00+09:00")
    after = events(out)[uid]
    assert after["sequence"] > before["sequence"]
    assert after.decoded("dtstamp") > before.decoded("dtstamp")
    assert after.decoded("dtstart") == datetime(2021, 8, 23, 1, tzinfo=TOKYO)
    assert after.decoded("dtend") == datetime(2021, 8, 23, 2, tzinfo=TOKYO)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "延期しました（当初の予定: 2021年7月19日(月) AM1:00～AM2:00）" in page
    feed = feedparser.parse((out / "feed.atom").read_bytes())
    [entry] = [e for e in feed.entries if e.id == uid]
    assert entry.updated_parsed[:6] == (2021, 6, 1, 0, 0, 0)  # the moment it was republished


def test_a_window_removed_from_the_table_stays_cancelled(cli: Cli, project: Path) -> None:
    publish(cli, project)
    text = project.read_text(encoding="utf-8")
    first, rest = text.split("[[windows]]", 1)
    _, remaining = rest.split("[[windows]]", 1)  # drop window 1
    project.write_text(first + "[[windows]]" + remaining, encoding="utf-8")
    out = publish(cli, project, "2021-05-02T09:00:00+09:00")
    gone = events(out)[window_uid("2021-05-30-emoney")]
    assert gone["status"] == "CANCELLED" and gone["sequence"] == 1
    page = (out / "index.html").read_text(encoding="utf-8")
    assert re.search(r"中止したメンテナンス.*2021-05-30-emoney", page, re.DOTALL)


def test_the_start_and_the_end_of_the_work_move_the_window(cli: Cli, project: Path) -> None:
    uid = window_uid("2021-07-19-emoney")
    sequences = []
    for now in (BEFORE_ALL, "2021-07-19T01:30:00+09:00", "2021-07-19T03:00:00+09:00"):
        out = publish(cli, project, now)
        sequences.append(events(out)[uid]["sequence"])
        page = (out / "index.html").read_text(encoding="utf-8")
    assert sequences == sorted(set(sequences))
    assert re.search(r"終了したメンテナンス.*2021-07-19-emoney", page, re.DOTALL)


def feed_updated(out: Path) -> dict[str, datetime]:
    feed = (out / "feed.atom").read_text(encoding="utf-8")
    return {entry_id: datetime.fromisoformat(stamp) for entry_id, stamp in re.findall(
        r"<id>([^<]+)</id>.*?<updated>([^<]+)</updated>", feed.split("<entry>", 1)[1],
        re.DOTALL)}


def test_every_time_in_the_feed_is_in_the_configured_zone(cli: Cli, project: Path) -> None:
    """Read back from the ledger, times are UTC: the feed mixed +00:00 and +09:00."""
    publish(cli, project, "2021-07-01T09:00:00+09:00")
    out = publish(cli, project, "2021-07-19T01:30:00+09:00")  # entries read back
    stamps = re.findall(r"<updated>([^<]+)</updated>",
                        (out / "feed.atom").read_text(encoding="utf-8"))
    assert len(stamps) == 5 and all(s.endswith("+09:00") for s in stamps), stamps


def test_each_entry_is_updated_when_its_content_changed(cli: Cli, project: Path) -> None:
    # First published on 1 July: windows 1 and 2 are over, 3 and 4 to come.
    first = feed_updated(publish(cli, project, "2021-07-01T09:00:00+09:00"))
    assert len(set(first.values())) == len(first) == 4  # no two entries share one
    assert {offset.utcoffset() for offset in first.values()} == {timedelta(hours=9)}
    assert first[window_uid("2021-05-30-emoney")] == datetime(2021, 5, 31, 3, tzinfo=TOKYO)
    assert first[window_uid("2021-06-27-emoney")] == datetime(2021, 6, 28, 1, tzinfo=TOKYO)
    seen = datetime(2021, 7, 1, 9, tzinfo=TOKYO)  # 3 and 4 changed when first seen
    coming = sorted(first[window_uid(w)] for w in ("2021-07-19-emoney", "2021-07-19-emoney-am4"))
    assert coming[0] == seen and coming[1] - seen < timedelta(milliseconds=1)
    # Republished during window 3: it alone changed, when its work started.
    during = feed_updated(publish(cli, project, "2021-07-19T01:30:00+09:00"))
    assert during[window_uid("2021-07-19-emoney")] == datetime(2021, 7, 19, 1, tzinfo=TOKYO)
    unchanged = set(first) - {window_uid("2021-07-19-emoney")}
    assert all(during[uid] == first[uid] for uid in unchanged)


def caldav(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": "Basic " + base64.b64encode(b"desk:x").decode(),
        "Content-Type": "text/calendar; charset=utf-8"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def test_a_caldav_server_takes_the_calendar_and_its_update(
        cli: Cli, project: Path, cli_at: Callable[[datetime], None]) -> None:
    uid = window_uid("2021-07-19-emoney")
    with radicale_server() as base:
        collection = f"{base}/desk/maintenance/"
        status, _ = caldav("PUT", collection, (publish(cli, project) / "maintenance.ics")
                           .read_bytes())
        assert status == 201
        stored = icalendar.Calendar.from_ical(caldav("GET", collection)[1])
        before = {str(e["uid"]): e for e in stored.walk("VEVENT")}
        assert len(before) == 4 and before[uid]["sequence"] == 0

        cli_at(BEFORE_EVERY_WINDOW)
        assert cli("postpone", "3", "--no-notice", "--yes", "-c", str(project)).code == 0
        out = publish(cli, project, "2021-06-01T09:00:00+09:00")
        status, _ = caldav("PUT", collection, (out / "maintenance.ics").read_bytes())
        assert status in (200, 201, 204)
        stored = icalendar.Calendar.from_ical(caldav("GET", collection)[1])
        after = {str(e["uid"]): e for e in stored.walk("VEVENT")}
    assert after[uid]["sequence"] > before[uid]["sequence"]
    assert after[uid].decoded("dtstart") == datetime(2021, 8, 23, 1, tzinfo=TOKYO)


async def test_the_daemon_republishes_on_each_change_and_only_then(project: Path,
                                                                   cli: Cli) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    timed_window(project, base + timedelta(hours=1), base + timedelta(hours=2), None)
    with project.open("a", encoding="utf-8") as config:
        config.write('\n[publish]\npath = "public"\nbase_url = "https://example.jp/m"\n')
    out, uid = project.parent / "public", window_uid("2021-07-19-emoney")
    now = [base]
    daemon = Daemon(project, lambda: now[0])
    await daemon.open()
    try:
        await daemon.tick()
        first = events(out)[uid]
        stamp = (out / "maintenance.ics").stat().st_mtime_ns
        await daemon.tick()
        assert (out / "maintenance.ics").stat().st_mtime_ns == stamp  # nothing changed

        postponed = await asyncio.to_thread(cli, "postpone", "3", "--no-notice", "--yes",
                                            "-c", str(project))
        assert postponed.code == 0, postponed.err
        await daemon.tick()
        moved = events(out)[uid]
        assert moved["sequence"] > first["sequence"]
        assert moved.decoded("dtstart") == base + timedelta(days=30, hours=1)
        assert moved["url"] == "https://example.jp/m/#2021-07-19-emoney"

        now[0] = base + timedelta(days=30, hours=1, minutes=5)  # the work has started
        await daemon.tick()
        await daemon.wait_for_sends()
        started = events(out)[uid]
        page = (out / "index.html").read_text(encoding="utf-8")
    finally:
        await daemon.close()
    assert started["sequence"] > moved["sequence"]
    assert re.search(r"作業中のメンテナンス.*2021-07-19-emoney", page, re.DOTALL)


def test_check_warns_when_publishing_without_base_url(cli: Cli, project: Path) -> None:
    """Without base_url the feed cannot say where it lives (feedvalidator: MissingSelf)."""
    text = project.read_text(encoding="utf-8")
    project.write_text(text + '\n[publish]\npath = "var/public"\n', encoding="utf-8")
    warned = json.loads(cli("check", *CHECK_AT, "--json", "-c", str(project)).out)["warnings"]
    assert [w for w in warned if "base_url" in w] == [
        '[publish] path is set without base_url: the feed has no rel="self" link (feed '
        "readers and validators want one) and the calendar's events no URL; set base_url "
        "to where the files are served"]
    project.write_text(text + '\n[publish]\npath = "var/public"\n'
                       'base_url = "https://www.j-mups.example.jp/maintenance/"\n',
                       encoding="utf-8")
    served = json.loads(cli("check", *CHECK_AT, "--json", "-c", str(project)).out)
    assert not [w for w in served["warnings"] if "base_url" in w]
    feed = feedparser.parse((publish(cli, project) / "feed.atom").read_bytes())
    assert {(link.rel, link.href) for link in feed.feed.links} >= {
        ("self", "https://www.j-mups.example.jp/maintenance/feed.atom")}
