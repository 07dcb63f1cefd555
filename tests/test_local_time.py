"""Times a contact reads are in [dispatcher].timezone; leads and deadlines are absolute time;
a local time that the zone skips or repeats is refused unless it carries its offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.errors import ConfigError
from dispatcher.render import Renderer
from dispatcher.table import (
    Channel,
    Phase,
    build_notice,
    find_window,
    load_config,
    load_contacts,
    notice_times,
    parse_config,
)
from tests.configs import MINIMAL, RESERVE
from tests.helpers import ROOT, TOKYO, WINDOW_3

NEW_YORK = ZoneInfo("America/New_York")


def _config_in_new_york(start: str, end: str, tmp_path: Path) -> bytes:
    text = (MINIMAL.replace(RESERVE, "  start = 2021-12-01T01:00:00\n  end = 2021-12-01T02:00:00")
            .replace('timezone = "Asia/Tokyo"', 'timezone = "America/New_York"')
            .replace("start = 2021-07-19T01:00:00", f"start = {start}", 1)
            .replace("end = 2021-07-19T02:00:00", f"end = {end}", 1)
            .replace('channels = ["fax"]', 'channels = ["fax"]\n  [windows.reminders]\n'
                     '  fax = ["1h"]', 1))
    return text.encode()


@pytest.mark.parametrize("utc_hour", [15, 18, 23])  # 00:00, 03:00 and 08:00 in Tokyo
def test_a_notice_sent_in_the_small_hours_is_dated_the_local_day(utc_hour: int) -> None:
    config = load_config(ROOT / "config.toml")
    window = find_window(config.windows, WINDOW_3)
    contact = load_contacts(config.settings.contacts_dir)[0]
    notice = build_notice(window, window.planned, Phase.START)
    renderer = Renderer(config.settings.templates_dir, config)
    sent_at = datetime(2021, 7, 18, utc_hour, 57, tzinfo=UTC)  # the clock gives UTC

    fax = renderer.render(notice, contact, Channel.FAX, sent_at)
    as_previewed = renderer.render(notice, contact, Channel.FAX, sent_at.astimezone(TOKYO))

    assert '<div class="date">2021年7月19日(月)</div>' in fax.body
    assert "2021年7月18日" not in fax.body
    assert fax.body == as_previewed.body  # preview (local time) and send (UTC) agree


def test_slot_times_reach_templates_in_the_configured_zone_whatever_offset_was_written(
        tmp_path: Path) -> None:
    raw = MINIMAL.replace("start = 2021-07-19T01:00:00", "start = 2021-07-18T16:00:00Z", 1)
    config = parse_config(raw.encode(), tmp_path / "config.toml")
    window = config.windows[0]
    renderer = Renderer(ROOT / "templates", config)
    context = renderer.context(build_notice(window, window.planned, Phase.START),
                               load_contacts(ROOT / "contacts")[0],
                               datetime(2021, 7, 18, 16, 0, tzinfo=UTC))
    assert context["slot"].start.hour == 1 and context["slot"].start.day == 19
    assert context["sent_at"].utcoffset() == timedelta(hours=9)


def test_a_reminder_across_the_spring_change_falls_an_hour_before_in_absolute_time(
        tmp_path: Path) -> None:
    raw = _config_in_new_york("2021-03-14T03:30:00", "2021-03-14T05:00:00", tmp_path)
    window = parse_config(raw, tmp_path / "config.toml").windows[0]
    reminder = next(n for n in notice_times(window, window.planned) if n.phase is Phase.REMINDER)
    local = reminder.at.astimezone(NEW_YORK)
    assert (local.hour, local.minute, local.tzname()) == (1, 30, "EST")
    assert window.planned.start - reminder.at == timedelta(hours=1)
    assert reminder.at.astimezone(UTC) == datetime(2021, 3, 14, 6, 30, tzinfo=UTC)


def test_a_local_time_repeated_in_autumn_is_refused_naming_its_key(tmp_path: Path) -> None:
    raw = _config_in_new_york("2021-11-07T01:30:00", "2021-11-07T03:00:00", tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, tmp_path / "config.toml")
    message = str(caught.value)
    assert "windows[1].start" in message and "happens twice" in message
    assert "-04:00" in message and "-05:00" in message


def test_a_repeated_local_time_with_its_offset_is_accepted(tmp_path: Path) -> None:
    raw = _config_in_new_york("2021-11-07T01:30:00-05:00", "2021-11-07T03:00:00", tmp_path)
    window = parse_config(raw, tmp_path / "config.toml").windows[0]
    assert window.planned.start.astimezone(UTC) == datetime(2021, 11, 7, 6, 30, tzinfo=UTC)
    assert window.planned.end - window.planned.start == timedelta(hours=1, minutes=30)


def test_a_skipped_local_time_is_refused_naming_its_key(tmp_path: Path) -> None:
    raw = _config_in_new_york("2021-03-14T02:30:00", "2021-03-14T04:00:00", tmp_path)
    with pytest.raises(ConfigError, match=r"windows\[1\]\.start.*does not exist"):
        parse_config(raw, tmp_path / "config.toml")
