"""`dispatcher init DIR`: a starting table that `check` passes as it is, whose night the
daemon runs (to the outbox), and that never overwrites a table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from dispatcher.daemon import Daemon
from tests.helpers import TOKYO, Cli

MADE_AT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
START = datetime(2027, 1, 12, 1, 0, tzinfo=TOKYO)  # the Tuesday after 30 days, AM1:00


def test_the_starting_table_passes_check_with_nothing_to_correct(
        cli: Cli, tmp_path: Path, cli_at: Callable[[datetime], None]) -> None:
    cli_at(MADE_AT)
    made = cli("init", str(tmp_path / "own"))
    assert made.code == 0, made.err
    config = tmp_path / "own" / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert "start = 2027-01-12T01:00:00\nend = 2027-01-12T02:00:00" in text
    assert (tmp_path / "own" / "templates" / "fax" / "start.html.j2").is_file()
    checked = cli("check", "--json", "-c", str(config))
    assert checked.code == 0, checked.err
    report = json.loads(checked.out)
    assert report["problems"] == [] and report["warnings"] == []
    assert [(n["tag"], n["at"], n["channels"]) for n in report["notices"]] == [
        ("start", "2027-01-12T01:00:00+09:00", ["fax", "email", "sms"]),
        ("end", "2027-01-12T02:00:00+09:00", ["fax", "email", "sms"])]


def test_init_never_overwrites_a_table(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", str(tmp_path)).code == 0
    config = tmp_path / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "# mine\n", encoding="utf-8")
    again = cli("init", str(tmp_path))
    assert again.code == 2
    assert again.err == (f"error: DIR: {config} already exists: init writes a new table and "
                         "never overwrites one; choose an empty folder\n")
    assert config.read_text(encoding="utf-8").endswith("# mine\n")


async def test_the_daemon_runs_its_night_to_the_outbox(
        cli: Cli, tmp_path: Path, cli_at: Callable[[datetime], None]) -> None:
    cli_at(MADE_AT)
    assert (await asyncio.to_thread(cli, "init", str(tmp_path))).code == 0
    daemon = Daemon(tmp_path / "config.toml", lambda: START)
    await daemon.open()
    try:
        await daemon.tick()
        await daemon.wait_for_sends()
    finally:
        await daemon.close()
    outbox = tmp_path / "var" / "outbox"
    sent = {channel: sorted(p.name.split("-")[0] for p in (outbox / channel).glob(
        "*_planned_start/*") if not p.name.endswith(".json")) for channel in ("email", "sms")}
    assert sent == {"email": ["C0001", "C0002"], "sms": ["C0001", "C0002"]}
    assert len(list((outbox / "fax").glob("*_planned_start/*.pdf"))) == 2
