from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.errors import ConfigError
from dispatcher.table import Channel, Notify, load_config, parse_config
from tests.configs import BROKEN, MINIMAL, Broken
from tests.helpers import ROOT, TOKYO


def tokyo(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=TOKYO)  # type: ignore[misc]


def test_shipped_table_is_the_seed() -> None:
    config = load_config(ROOT / "config.toml")
    slots = {w.number: [(s.name, s.start, s.end) for s in w.slots] for w in config.windows}
    assert slots == {
        1: [("planned", tokyo(2021, 5, 30, 22, 30), tokyo(2021, 5, 31, 3)),
            ("reserve-2021-06-13-2230", tokyo(2021, 6, 13, 22, 30), tokyo(2021, 6, 14, 3))],
        2: [("planned", tokyo(2021, 6, 27, 22, 30), tokyo(2021, 6, 28, 1)),
            ("reserve-2021-06-30-2230", tokyo(2021, 6, 30, 22, 30), tokyo(2021, 7, 1, 1)),
            ("reserve-2021-07-04-2230", tokyo(2021, 7, 4, 22, 30), tokyo(2021, 7, 5, 1))],
        3: [("planned", tokyo(2021, 7, 19, 1), tokyo(2021, 7, 19, 2)),
            ("reserve-2021-08-23-0100", tokyo(2021, 8, 23, 1), tokyo(2021, 8, 23, 2))],
        4: [("planned", tokyo(2021, 7, 19, 4), tokyo(2021, 7, 19, 7, 30)),
            ("reserve-2021-08-23-0400", tokyo(2021, 8, 23, 4), tokyo(2021, 8, 23, 7, 30))],
    }
    policy = {w.number: (w.notify, w.channels) for w in config.windows}
    assert policy[3] == (Notify.BROADCAST, (Channel.FAX, Channel.EMAIL, Channel.SMS))
    assert {policy[n][0] for n in (1, 2, 4)} == {Notify.NONE}


def test_shipped_config_carries_helpdesk_and_affected_services() -> None:
    config = load_config(ROOT / "config.toml")
    assert (config.helpdesk.name, config.helpdesk.phone) == ("J-Mups ヘルプデスク", "0120-220-766")
    names = [s.name for s in config.affected_services]
    assert names[0] == "各種電子マネー決済取引" and len(names) == 6
    assert "iD、QUICPay" in config.affected_services[2].note


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(MINIMAL, encoding="utf-8")
    settings = load_config(tmp_path / "config.toml").settings
    assert settings.contacts_dir == tmp_path / "contacts"
    assert settings.templates_dir == tmp_path / "templates"


def test_times_without_offset_are_in_the_configured_zone() -> None:
    text = MINIMAL.replace('"Asia/Tokyo"', '"UTC"')
    window = parse_config(text.encode(), Path("config.toml")).windows[0]
    assert window.planned.start == tokyo(2021, 7, 19, 10)


def test_times_with_an_offset_keep_their_instant() -> None:
    text = MINIMAL.replace("start = 2021-07-19T01:00:00", "start = 2021-07-18T16:00:00Z")
    window = parse_config(text.encode(), Path("config.toml")).windows[0]
    assert window.planned.start == tokyo(2021, 7, 19, 1)
    assert window.planned.start.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.name)
def test_each_broken_config_names_file_line_and_key(case: Broken) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(case.text().encode(), Path("conf/config.toml"))
    messages = [str(p) for p in caught.value.problems]
    matching = [m for m in messages if case.where in m and case.what in m]
    assert matching, messages
    assert all(m.startswith("conf/config.toml") for m in messages)
    if case.line() is not None:
        assert matching[0].startswith(f"conf/config.toml:{case.line()}: "), matching[0]


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = MINIMAL.replace('notify = "broadcast"', 'notify = "sometimes"').replace(
        '"Asia/Tokyo"', '"Mars/Olympus"')
    with pytest.raises(ConfigError) as caught:
        parse_config(text.encode(), Path("config.toml"))
    keys = sorted(p.where.split(": ")[-1] for p in caught.value.problems)
    assert keys == ["dispatcher.timezone", "windows[1].notify"]


def test_local_time_skipped_by_daylight_saving_is_rejected() -> None:
    text = (MINIMAL.replace('"Asia/Tokyo"', '"Europe/Berlin"')
            .replace("2021-07-19T01:00:00", "2021-03-28T02:30:00")
            .replace("2021-07-19T02:00:00", "2021-03-28T04:00:00"))
    with pytest.raises(ConfigError, match=r"windows\[1\]\.start: .*does not exist"):
        parse_config(text.encode(), Path("config.toml"))


def test_bytes_that_are_not_utf8_name_the_line() -> None:
    raw = MINIMAL.encode() + b"# \x82\xa0 cp932 comment\n"
    line = MINIMAL.count("\n") + 1
    with pytest.raises(ConfigError, match=rf"^config.toml:{line}: not valid UTF-8"):
        parse_config(raw, Path("config.toml"))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: no such file"):
        load_config(tmp_path / "nothere.toml")


def test_config_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


@pytest.mark.parametrize("table", [
    '[channels.fax]\nbackend = "email-gateway"\ngateway_address = "{number}@{fax}.example.jp"\n',
    '[channels.sms]\nbackend = "twilio"\nfrom = "050-1234-5678"\n',
])
def test_an_invalid_required_key_is_one_problem_not_also_a_missing_one(table: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config((MINIMAL + "\n" + table).encode(), Path("config.toml"))
    assert len(caught.value.problems) == 1, [str(p) for p in caught.value.problems]
