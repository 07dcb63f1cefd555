from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.configs import BROKEN, Broken
from tests.helpers import CHECK_AT, ROOT, Cli


def test_windows_table_shows_the_seed(cli: Cli, project: Path) -> None:
    result = cli("windows", "--config", str(project), "--now", "2021-07-01T00:00:00")
    assert result.code == 0, result.err
    for text in ("2021年5月30日(日) PM10:30～翌AM3:00", "2021年6月27日(日) PM10:30～翌AM1:00",
                 "2021年7月19日(月) AM1:00～AM2:00", "2021年7月19日(月) AM4:00～AM7:30",
                 "reserve-2021-06-13-2230: 2021年6月13日(日) PM10:30～翌AM3:00",
                 "reserve-2021-07-04-2230: 2021年7月4日(日) PM10:30～翌AM1:00",
                 "reserve-2021-08-23-0100: 2021年8月23日(月) AM1:00～AM2:00",
                 "announce 2021年7月5日(月) AM10:00", "broadcast", "fax, email, sms"):
        assert text in result.out, text


def test_narrow_terminal_gets_one_block_per_window(cli: Cli, project: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("windows", "--config", str(project), "--now", "2021-07-19T00:00:01")
    block = result.out[result.out.index("#3 "):result.out.index("#4 ")].splitlines()
    assert block[1:] == [
        "    notice: broadcast (fax, email, sms)",
        "  ▶ planned                  2021年7月19日(月) AM1:00～AM2:00",
        "    reserve-2021-08-23-0100  2021年8月23日(月) AM1:00～AM2:00",
        "    next notice: start 2021年7月19日(月) AM1:00",
        "    notices: start -, end -",
    ]
    assert max(len(line) for line in result.out.splitlines()) <= 80


def test_windows_json_has_the_contract_keys(cli: Cli, project: Path) -> None:
    result = cli("windows", "--json", "--config", str(project), "--now", "2021-07-19T01:30+09:00")
    rows = json.loads(result.out)
    assert [r["number"] for r in rows] == [1, 2, 3, 4]
    keys = {"number", "id", "title", "notify", "channels", "audience", "active_slot", "slots",
            "next_notice", "notices", "end_notice", "work", "failing"}  # keys only added
    assert all(set(r) == keys for r in rows)
    window3 = rows[2]
    assert window3["slots"] == [
        {"name": "planned", "start": "2021-07-19T01:00:00+09:00",
         "end": "2021-07-19T02:00:00+09:00"},
        {"name": "reserve-2021-08-23-0100", "start": "2021-08-23T01:00:00+09:00",
         "end": "2021-08-23T02:00:00+09:00"},
    ]
    assert window3["active_slot"] == "planned"
    assert window3["next_notice"] == {"phase": "end", "at": "2021-07-19T02:00:00+09:00"}
    assert window3["channels"] == ["fax", "email", "sms"]
    assert [len(r["slots"]) for r in rows] == [2, 3, 2, 2]
    assert all(r["next_notice"] is None for r in rows if r["notify"] == "none")


@pytest.mark.parametrize(("now", "expected"), [
    ("2021-07-01T00:00:00", {"phase": "announce", "at": "2021-07-05T10:00:00+09:00"}),
    ("2021-07-18T12:00:00", {"phase": "reminder", "lead": "1h",
                             "at": "2021-07-19T00:00:00+09:00"}),
    ("2021-07-19T00:00:01", {"phase": "start", "at": "2021-07-19T01:00:00+09:00"}),
    ("2021-07-18T16:30:00Z", {"phase": "end", "at": "2021-07-19T02:00:00+09:00"}),
    ("2021-07-19T02:00:01", None),
])
def test_next_notice_follows_now(cli: Cli, project: Path, now: str,
                                 expected: dict[str, str] | None) -> None:
    rows = json.loads(cli("windows", "--json", "-c", str(project), "--now", now).out)
    assert rows[2]["next_notice"] == expected


def test_check_summarises_the_shipped_project(cli: Cli, project: Path) -> None:
    result = cli("check", *CHECK_AT, "--config", str(project))
    assert result.code == 0, result.err
    assert "windows: 4 (1 broadcast)" in result.out
    assert "contacts: 32; with an address per channel: fax 30, email 31, sms 29" in result.out
    assert "window 3 (2021-07-19-emoney): 29 contacts in the audience" in result.out


def test_check_refuses_a_broadcast_that_reaches_nobody(cli: Cli, project: Path) -> None:
    text = project.read_text(encoding="utf-8").replace('audience = ["emoney"]',
                                                       'audience = ["nobody"]')
    project.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), start=1)
                if row.startswith('audience = ["nobody"]'))
    result = cli("check", *CHECK_AT, "--config", str(project))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {project}:{line}: windows[3].audience: window 3 (2021-07-19-emoney) is "
        "broadcast but no valid contact has any of the tags nobody: its notices would reach "
        "nobody; correct the tags here or the contacts"]
    # once its night is over, nothing more would go: then it is no mistake
    assert cli("check", "--now", "2021-09-01T00:00:00+09:00", "--config", str(project)
               ).err.count("reach nobody") == 0


@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.name)
def test_broken_config_exits_2_with_one_clear_message(cli: Cli, tmp_path: Path,
                                                      case: Broken) -> None:
    config = tmp_path / "config.toml"
    config.write_text(case.text(), encoding="utf-8")
    result = cli("check", "--config", str(config))
    assert result.code == 2
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert all(line.startswith(f"error: {config}") for line in lines), lines
    assert any(case.where in line and case.what in line for line in lines)


def test_broken_contacts_are_listed_together_with_exit_2(cli: Cli, project: Path) -> None:
    tokyo = project.parent / "contacts" / "tokyo.csv"
    text = tokyo.read_text(encoding="utf-8-sig")
    text = text.replace("03-5551-1037", "03-55").replace("incident-m0002@example.jp", "m0002@")
    tokyo.write_text(text, encoding="utf-8-sig")
    result = cli("check", "--config", str(project))
    assert result.code == 2
    assert result.err.splitlines() == [  # 2 of 20 rows: more than one may be set aside
        f"error: {tokyo}: 2 of its 20 rows are invalid, more than [dispatcher] "
        "invalid_rows_percent = 1 allows (1): the whole file is refused, it is probably not "
        "the contacts file meant",
        f"error: {tokyo}:2: fax: '03-55' is not a valid phone number",
        f"error: {tokyo}:3: email: 'm0002@': There must be something after the @-sign.",
    ]


def test_missing_contacts_and_templates_folders(cli: Cli, project: Path) -> None:
    for folder in ("contacts", "templates"):
        shutil.rmtree(project.parent / folder)
    result = cli("check", "--config", str(project))
    assert result.code == 2
    assert f"{project.parent}/contacts: no such folder" in result.err
    assert f"{project.parent}/templates: no such folder" in result.err


def test_missing_config_path(cli: Cli, tmp_path: Path) -> None:
    result = cli("windows", "--config", str(tmp_path / "nope.toml"))
    assert (result.code, result.err) == (2, f"error: {tmp_path}/nope.toml: no such file\n")


def test_bad_now_is_an_argument_error(cli: Cli, project: Path) -> None:
    result = cli("windows", "--config", str(project), "--now", "tomorrow")
    assert result.code == 2
    assert result.err.startswith("error: --now: 'tomorrow' is not an ISO-8601 date-time")


def test_console_script_runs_without_traceback_on_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[[windows]]\nnumber = 1\nstart = 2021-07-19T02:00:00\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dispatcher", "check", "-c", str(config)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"error: {config}:1: windows[1].end: missing" in done.stderr.splitlines()


def test_check_reports_template_errors_with_file_and_line(cli: Cli, project: Path) -> None:
    templates = project.parent / "templates"
    (templates / "sms" / "end.txt.j2").write_text(
        "{% extends 'sms/base.txt.j2' %}\n{% block text %}{{ helpdesk.fax }}{% endblock %}\n",
        encoding="utf-8")
    (templates / "email" / "start.txt.j2").write_text("Subject: {{ oops\n", encoding="utf-8")
    result = cli("check", "--config", str(project))
    assert result.code == 2
    lines = result.err.splitlines()
    assert any(line.startswith(f"error: {templates}/sms/end.txt.j2:2: unknown variable")
               and "'fax'" in line for line in lines), lines
    assert any(line.startswith(f"error: {templates}/email/start.txt.j2:1: syntax:")
               for line in lines), lines
    assert "Traceback" not in result.err


def test_help_texts_keep_the_words_in_brackets(cli: Cli) -> None:
    """`[http] listen` names a key: Rich markup used to eat it (`console on  listen`)."""
    assert "[http] listen" in " ".join(cli("console", "--help").out.split())
    assert "[console] users_file" in cli("user", "--help").out
    assert "[receipts] secret_file" in " ".join(cli("secret", "--help").out.split())
