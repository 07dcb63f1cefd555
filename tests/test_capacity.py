"""Capacity before the night: how long each notice takes on each channel against how long
it matters, and `check`'s warning when the fax lines cannot reach everyone in time."""

from __future__ import annotations

import json
from pathlib import Path

from dispatcher.schedule import capacities, per_second
from dispatcher.table import Channel, load_config, load_inputs
from tests.helpers import CHECK_AT, Cli, configure, use_contacts


def merchants(count: int) -> str:
    return "".join(f"M{n},加盟店{n},担当{n},03-3{n // 10000:03d}-{n % 10000:04d},"
                   f"m{n}@example.jp,090-1{n // 10000:03d}-{n % 10000:04d},emoney\n"
                   for n in range(count))


def test_ten_thousand_faxes_on_four_lines_cannot_go_within_the_hour(
        cli: Cli, project: Path) -> None:
    use_contacts(project, merchants(10_000))
    result = cli("check", *CHECK_AT, "--json", "-c", str(project))
    assert result.code == 0, result.err
    report = json.loads(result.out)
    entries = {(e["phase"], e["channel"]): e for e in report["capacity"]}
    assert set(entries) == {(phase, channel) for phase in
                            ("announce", "reminder-72h", "reminder-24h", "reminder-1h",
                             "start", "end") for channel in ("fax", "email", "sms")}
    start_fax = entries["start", "fax"]
    assert start_fax["recipients"] == 10_000 and start_fax["relevant_seconds"] == 3600
    assert start_fax["estimated_seconds"] == 10_000 * 50 / 4  # 4 lines, 50 s a fax
    assert start_fax["would_expire"] == 10_000 - 4 * 3600 // 50
    assert entries["start", "email"]["would_expire"] == 0
    assert ("window 3 start: fax: 10,000 recipients on 4 lines take about 34 h 43 min; the "
            "notice matters for 1 h 0 min; about 9,712 would expire (try more lines, an "
            "e-mail-to-fax gateway, or a fax reminder days ahead)") in report["warnings"]
    text = cli("check", *CHECK_AT, "-c", str(project))
    assert "warning: window 3 start: fax: 10,000 recipients" in text.out.replace("\n", " ")


def test_the_shipped_table_reaches_its_audience_in_time(cli: Cli, project: Path) -> None:
    report = json.loads(cli("check", *CHECK_AT, "--json", "-c", str(project)).out)
    # the seed's reminders go at the work's time of night (AM1:00): said, not a capacity
    [night] = report["warnings"]
    assert "fall at night" in night
    assert all(e["would_expire"] == 0 for e in report["capacity"])


def test_a_rate_limit_and_more_lines_change_the_estimate(project: Path) -> None:
    configure(project, """
[channels.email]
backend = "outbox"
rate_per_second = 2

[channels.fax]
backend = "outbox"
concurrency = 40
seconds_per_fax = 60
""")
    config = load_config(project)
    assert per_second(config.channels[Channel.EMAIL]) == 2  # 8 / 0.1 s, capped at 2
    assert per_second(config.channels[Channel.FAX]) == 40 / 60
    use_contacts(project, merchants(3_000))
    inputs = load_inputs(project)
    start = {c.channel: c for c in capacities(inputs.config, inputs.contacts)
             if c.tag == "start"}
    assert start[Channel.EMAIL].estimated_seconds == 1_500
    assert start[Channel.FAX].would_expire == 3_000 - int(40 / 60 * 3600)


def test_a_dry_run_shows_how_long_each_channel_takes(cli: Cli, project: Path) -> None:
    result = cli("send", "3", "start", "--dry-run", "-c", str(project))
    assert result.code == 0, result.err
    assert ("fax: 27 recipients, 2 without an address; about 5 min 38 s on 4 lines; the "
            "notice matters for") in result.out
    assert "email: 28 recipients, 1 without an address; about 0.3 s at about 80 a second" \
        in result.out


def test_the_fax_workers_follow_the_lines(project: Path) -> None:
    from dispatcher.send.faxpress import FaxPace, pace_for

    shipped = project.read_text(encoding="utf-8")

    def pace(fax: str) -> FaxPace:
        project.write_text(shipped, encoding="utf-8")
        configure(project, f"[channels.fax]\n{fax}")
        return pace_for(load_config(project).channels[Channel.FAX])

    # 4 lines send a fax every 12.5 s: one worker, a minute of pages (5) rounded up to 8
    assert pace('backend = "hylafax"\nconcurrency = 4\n') == FaxPace(1, 8)
    assert pace('backend = "outbox"\nconcurrency = 4\n') == FaxPace(1, 8)  # stands for them
    # 400 lines at 40 s: 10 faxes a second, two workers, at most a batch each ahead
    assert pace('backend = "hylafax"\nconcurrency = 400\nseconds_per_fax = 40\n') == \
        FaxPace(2, 128)
    assert pace('backend = "email-gateway"\ngateway_address = "{number}@fax.example.jp"\n'
                'concurrency = 400\nseconds_per_fax = 40\n'
                'rate_per_second = 1\n') == FaxPace(1, 60)  # the gateway takes one a second


def test_a_notice_under_way_shows_the_time_left_of_its_slowest_channel(project: Path) -> None:
    from dispatcher.web import notice_progress

    config = load_config(project)
    under_way = {("fax", "pending"): 40, ("email", "pending"): 80, ("email", "sent"): 20}
    progress = notice_progress(under_way, config)
    assert progress == {"done": 20, "total": 140, "percent": 14,
                        "left": "残り約 8分20秒"}  # 40 faxes on 4 lines at 50 s
    assert notice_progress({("fax", "sent"): 40}, config)["left"] == ""
