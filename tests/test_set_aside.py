"""A bad contact row is set aside, not fatal: `check` warns with its file, line and reason,
a send goes to everyone else, and the row shows where the help desk looks: the daemon's
log, `status`, `unreached` (state invalid) and the console's banner."""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path

from tests.helpers import (
    BEFORE_EVERY_WINDOW,
    CHECK_AT,
    WINDOW_3,
    Cli,
    HttpClient,
    daemon_with_console,
    still_daemon,
)

BAD_EMAIL = "incident-m0002＠example.jp"  # a full-width at-sign, as typed by hand


def set_one_row_aside(project: Path) -> str:
    """M0002's e-mail mistyped; returns where its row is."""
    tokyo = project.parent / "contacts" / "tokyo.csv"
    text = tokyo.read_text(encoding="utf-8-sig")
    assert "incident-m0002@example.jp" in text
    tokyo.write_text(text.replace("incident-m0002@example.jp", BAD_EMAIL), encoding="utf-8")
    return f"{tokyo}:3"


def test_check_warns_of_the_row_and_counts_it(cli: Cli, project: Path) -> None:
    row = set_one_row_aside(project)
    result = cli("check", *CHECK_AT, "-c", str(project))
    assert result.code == 0, result.err
    out = " ".join(result.out.split())
    assert "set aside as invalid: 1" in out
    assert ("window 3 (2021-07-19-emoney): 28 contacts in the audience (1 more set aside as "
            "invalid, not sent to)") in out
    assert (f"warning: {row}: contact row set aside as invalid, not sent to (M0002 "
            f"ひまわりベーカリー): email: '{BAD_EMAIL}'") in out


def test_a_send_reaches_everyone_else_and_unreached_lists_the_row(cli: Cli,
                                                                   project: Path) -> None:
    row = set_one_row_aside(project)
    sent = cli("send", "3", "start", "--yes", "-c", str(project))
    assert sent.code == 0, sent.err
    assert f"warning: {row}: M0002 ひまわりベーカリー is set aside as invalid" in sent.err
    outbox = project.parent / "var" / "outbox"
    emails = {p.name.split("-")[0] for p in (outbox / "email").glob("*start*/*.eml")}
    assert len(emails) == 27 and "M0002" not in emails  # 28 addresses, one set aside
    assert not list((outbox / "sms").glob("*start*/M0002-*"))  # not on any channel
    report = json.loads(cli("unreached", "3", "start", "--json", "-c", str(project)).out)
    assert report["set_aside"] == 1 and report["audience"] == 29
    [invalid] = [c for c in report["contacts"] if c["contact"] == "M0002"]
    assert invalid["set_aside"] == row and invalid["reached"] is False
    assert invalid["phones"] == ["090-1002-5026", "03-5552-1074"]  # as typed, to phone
    assert {c: o["state"] for c, o in invalid["channels"].items()} == {
        "fax": "invalid", "email": "invalid", "sms": "invalid"}


async def test_status_shows_the_rows_the_daemon_set_aside(cli: Cli, project: Path) -> None:
    row = set_one_row_aside(project)
    async with still_daemon(project, BEFORE_EVERY_WINDOW):
        pass  # it writes the rows of the table it took in
    shown = json.loads((await asyncio.to_thread(cli, "status", "3", "--json", "-c",
                                                str(project))).out)
    assert shown["window"] == WINDOW_3
    [entry] = shown["set_aside"]
    assert (entry["row"], entry["contact"], entry["addresses"]["email"]) == (
        row, "M0002", BAD_EMAIL)
    text = " ".join((await asyncio.to_thread(cli, "status", "3", "-c", str(project))
                     ).out.split())
    assert "1 contact of its audience set aside as invalid, not sent to" in text
    # corrected, and read again: no longer shown
    tokyo = project.parent / "contacts" / "tokyo.csv"
    tokyo.write_text(tokyo.read_text(encoding="utf-8").replace(BAD_EMAIL, "m0002@example.jp"),
                     encoding="utf-8")
    async with still_daemon(project, BEFORE_EVERY_WINDOW):
        pass
    again = await asyncio.to_thread(cli, "status", "3", "--json", "-c", str(project))
    assert json.loads(again.out)["set_aside"] == []


def test_the_console_shows_the_row_on_every_page(project: Path) -> None:
    row = set_one_row_aside(project)
    with daemon_with_console(project) as port:
        desk = HttpClient(port)
        assert desk.login() == 303
        _, _, page = desk.request("GET", "/")
        log = (project.parent / "run.log").read_text(encoding="utf-8")
    text = html.unescape(page)
    assert "連絡先ファイルの次の行は内容が正しくないため、送信対象から外しています" in text
    assert f"{row}: M0002 ひまわりベーカリー: email: '{BAD_EMAIL}'" in text
    assert "contact row set aside as invalid, not sent to" in log and "M0002" in log
