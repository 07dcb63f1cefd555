"""The commands' output, pinned: `windows`, `check`, `preview --json` and `status --json`
on the shipped table must print exactly what tests/golden/ holds. Moving code must not
change what an operator sees; a deliberate change of output updates the file in the same
commit (`UPDATE_GOLDEN=1 pytest tests/test_golden.py` rewrites them, to be reviewed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import Cli

GOLDEN = Path(__file__).parent / "golden"
NOW = "2021-07-19T01:00:00"


def matches_golden(name: str, output: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(output, encoding="utf-8")
    assert output == path.read_text(encoding="utf-8"), f"output differs from {path}"


@pytest.mark.parametrize(("name", "args"), [
    ("windows.txt", ("windows", "--now", "2021-07-01T00:00:00")),
    ("windows.json", ("windows", "--json", "--now", "2021-07-19T01:30:00")),
    ("check.txt", ("check", "--now", "2021-07-01T09:00:00")),
    ("preview-start-M0001.json", ("preview", "3", "start", "--json", "--now", NOW,
                                  "--contact", "M0001", "--out", "pv")),
    ("preview-end-M0021.json", ("preview", "3", "end", "--json", "--now", NOW,
                                "--contact", "M0021", "--out", "pv")),
    ("preview-announce-M0001.json", ("preview", "3", "announce", "--json", "--now", NOW,
                                     "--contact", "M0001", "--out", "pv")),
    ("preview-reminder-1h-M0001.json", ("preview", "3", "reminder", "--lead", "1h", "--json",
                                        "--now", NOW, "--contact", "M0001", "--out", "pv")),
    ("preview-overrun-M0001.json", ("preview", "3", "overrun", "--json", "--now",
                                    "2021-07-19T02:10:00", "--contact", "M0001", "--out", "pv")),
    ("preview-extended-M0001.json", ("preview", "3", "extended", "--until",
                                     "2021-07-19T02:30:00", "--json", "--now",
                                     "2021-07-19T01:50:00", "--contact", "M0001",
                                     "--out", "pv")),
    ("preview-update-M0001.json", ("preview", "3", "update", "--text",
                                   "作業は順調に進んでおります。AM2:00 に終了の見込みです。",
                                   "--json", "--now", "2021-07-19T01:40:00", "--contact",
                                   "M0001", "--out", "pv")),
])
def test_output_is_as_pinned(cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch,
                             name: str, args: tuple[str, ...]) -> None:
    monkeypatch.chdir(project.parent)
    result = cli(*args)
    assert result.code == 0, result.err
    matches_golden(name, result.out)


def test_status_after_a_send_is_as_pinned(cli: Cli, project: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.parent)
    assert cli("send", "3", "start", "--yes").code == 0
    result = cli("status", "3", "--json")
    assert result.code == 0, result.err
    # the moments of the send (the table's times stay): in the configured zone, +09:00
    varying = re.sub(r'"\d{4}-\d\d-\d\dT[0-9:]+\.\d+\+09:00"', '"<time>"', result.out)
    matches_golden("status.json", re.sub(r'"operator:[^"]*"', '"operator:<user>"', varying))
