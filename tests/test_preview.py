"""`dispatcher preview` and the fax page it writes, checked with poppler's tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email import message_from_bytes
from pathlib import Path

import pytest

from dispatcher.render import FaxPages
from tests.helpers import ROOT, Cli

NOW = "2021-07-19T01:00:00"


def poppler(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def test_fax_preview_is_one_a4_page_with_an_embedded_japanese_font(
        cli: Cli, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("preview", "3", "start", "--channel", "fax", "--contact", "M0001",
                 "--out", str(out), "--now", NOW, "-c", str(project))
    assert result.code == 0, result.err
    pdf, png = out / "M0001.fax.pdf", out / "M0001.fax.png"
    info = poppler("pdfinfo", str(pdf))
    assert "Pages:           1" in info and "(A4)" in info
    fonts = poppler("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts and all(" yes " in line for line in fonts)
    assert any("IPAex" in line or "CJK" in line for line in fonts)
    text = poppler("pdftotext", "-layout", str(pdf), "-")
    for expected in ("2021年7月19日(月)", "0120-220-766", "さくら書店 本店 御中",
                     "メンテナンス作業開始のご連絡"):
        assert expected in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(pdf) in result.out and str(png) in result.out


def test_contact_preview_prints_email_and_sms(cli: Cli, project: Path, tmp_path: Path) -> None:
    result = cli("preview", "3", "end", "--contact", "M0002", "--channel", "email",
                 "--channel", "sms", "--out", str(tmp_path), "--now", "2021-07-19T02:00:00",
                 "-c", str(project))
    assert result.code == 0, result.err
    assert "To: ひまわりベーカリー 山田 花子 <incident-m0002@example.jp>" in result.out
    assert "Subject: 【J-Mups】メンテナンス作業終了のご連絡（2021年7月19日(月)）" in result.out
    assert "Date: Mon, 19 Jul 2021 02:00:00 +0900" in result.out
    assert "sms to +819010025026: 2 segment(s), UCS-2" in result.out
    eml = (tmp_path / "M0002.email.eml").read_bytes()
    assert b"Subject: =?utf-8?" in eml


def test_the_preview_carries_the_message_id_and_headers_that_go_out(
        cli: Cli, project: Path, tmp_path: Path) -> None:
    preview = cli("preview", "3", "start", "--contact", "M0002", "--channel", "email", "--out",
                  str(tmp_path), "-c", str(project))
    assert preview.code == 0, preview.err
    sent = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
    assert sent.code == 0, sent.err
    [outbox] = (project.parent / "var" / "outbox" / "email").glob("*/M0002-*.eml")
    previewed, went = (message_from_bytes(path.read_bytes())
                       for path in (tmp_path / "M0002.email.eml", outbox))
    assert previewed["Message-ID"] == went["Message-ID"]
    assert previewed["Message-ID"].endswith("@j-mups.example.jp>")
    for mail in (previewed, went):
        assert mail["Auto-Submitted"] == "auto-generated"
    for path in (tmp_path / "M0002.email.eml", outbox):
        assert path.stat().st_mode & 0o777 == 0o600  # a contact's data: owner-only
        head = path.read_bytes().split(b"\r\n\r\n")[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_contact_preview_without_out_uses_a_temporary_folder(cli: Cli, project: Path) -> None:
    result = cli("preview", "3", "start", "--contact", "M0003", "--channel", "sms",
                 "--now", NOW, "-c", str(project))
    folder = Path(result.out.strip().splitlines()[-1].removeprefix("files: "))
    assert folder.name.startswith("dispatcher-preview-")
    assert (folder / "M0003.sms.txt").read_text(encoding="utf-8").startswith("【J-Mups】")


def test_json_lists_every_contact_message(cli: Cli, project: Path) -> None:
    result = cli("preview", "3", "end", "--json", "--now", "2021-07-19T02:00:00",
                 "--channel", "email", "--channel", "sms", "-c", str(project))
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    by_channel = {c: [r for r in rows if r["channel"] == c] for c in ("email", "sms")}
    assert (len(by_channel["email"]), len(by_channel["sms"])) == (28, 26)
    assert all(r["segments"] == 2 and r["subject"] is None for r in by_channel["sms"])
    assert all(r["subject"].startswith("【J-Mups】") for r in by_channel["email"])
    assert set(rows[0]) >= {"contact", "channel", "address", "subject", "body", "segments",
                            "files"}


def test_dry_run_totals_per_channel(cli: Cli, project: Path, tmp_path: Path) -> None:
    result = cli("preview", "3", "start", "--now", NOW, "--out", str(tmp_path), "-c",
                 str(project))
    assert result.code == 0, result.err
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in result.out.splitlines() if line.count("│") == 6}
    assert lines["fax"] == ["27", "2", "-", "27 (27 distinct)"]
    assert lines["email"] == ["28", "1", "-", "-"]
    assert lines["sms"] == ["26", "3", "52", "-"]
    assert len(list(tmp_path.glob("*.fax.pdf"))) == 27
    assert len(list(tmp_path.glob("*.email.eml"))) == 28


def test_window_that_is_not_broadcast_is_previewed_with_a_note(cli: Cli, project: Path) -> None:
    result = cli("preview", "1", "start", "--channel", "sms", "--json", "--now", NOW,
                 "-c", str(project))
    assert result.code == 0
    assert "window 1 is not broadcast" in result.err
    assert "5/30(日) PM10:30～翌AM3:00" in json.loads(result.out)[0]["body"]


@pytest.mark.parametrize(("args", "message"), [
    (("9", "start"), "error: WINDOW: no window '9'"),
    (("3", "start", "--contact", "M9999"), "error: --contact: no contact with id 'M9999'"),
])
def test_preview_of_something_that_does_not_exist(cli: Cli, project: Path, args: tuple[str, ...],
                                                  message: str) -> None:
    result = cli("preview", *args, "-c", str(project))
    assert result.code == 2 and result.err.startswith(message)


def test_identical_pages_are_rendered_once(tmp_path: Path) -> None:
    pages = FaxPages(tmp_path)
    html = "<html><body><p>加盟店各位</p></body></html>"
    first, second = pages.render(html), pages.render(html)
    assert first is second and pages.rendered == 1
    pages.render(html.replace("各位", "御中"))
    assert pages.rendered == 2


def test_without_a_japanese_font_check_and_preview_refuse(project: Path, tmp_path: Path) -> None:
    fonts_conf = tmp_path / "fonts.conf"
    fonts_conf.write_text(f'<?xml version="1.0"?><fontconfig><dir>{tmp_path}/none</dir>'
                          f"<cachedir>{tmp_path}/cache</cachedir></fontconfig>")
    env = {**os.environ, "FONTCONFIG_FILE": str(fonts_conf), "PYTHONPATH": str(ROOT)}
    for args in (["check"], ["preview", "3", "start", "--contact", "M0001", "--channel", "fax"]):
        done = subprocess.run([sys.executable, "-m", "dispatcher", *args, "-c", str(project)],
                              capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 2, done.stderr
        assert "error: fax: no Japanese font is installed" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_preview_is_dated_at_the_notices_own_time_unless_now_says_otherwise(
        cli: Cli, project: Path) -> None:
    """The start notice goes at AM1:00: its fax's header line and date say so, whatever
    day the preview is made; --now dates it otherwise; a report's notice, now."""
    def fax_body(*args: str) -> str:
        result = cli("preview", "3", "start", "--channel", "fax", "--contact", "M0001",
                     "--json", "-c", str(project), *args)
        assert result.code == 0, result.err
        body: str = json.loads(result.out)[0]["body"]
        return body

    assert "2021/07/19 01:00" in fax_body() and "2021年7月19日(月)</div>" in fax_body()
    assert "2021/07/18 22:15" in fax_body("--now", "2021-07-18T22:15:00")



def test_a_preview_makes_no_ledger(cli: Cli, project: Path) -> None:
    """No ledger made just to look (its key file is: the preview's Message-ID is the one
    that goes out)."""
    assert cli("preview", "3", "start", "--json", "-c", str(project)).code == 0
    assert not (project.parent / "var" / "ledger.sqlite3").exists()
