"""The fax page as a fax machine prints it: a real bold face, the header line with the page
number, and what is left of both once Ghostscript has made it the 1-bit G3 page HylaFAX
sends (204×196 dpi)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from dispatcher.render import tag_line
from dispatcher.table import Sender
from tests.faxpage import embedded_weights
from tests.helpers import ARTIFACTS, CHECK_AT, TOKYO, Cli

NOW = "2021-07-19T01:00:00"
SENDER_FAX = "03-5555-0100"
MM_PER_INCH = 25.4
POINTS_PER_INCH = 72


def with_sender_fax(project: Path) -> None:
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('website = "https://j-mups.com"',
                                    f'website = "https://j-mups.com"\nfax = "{SENDER_FAX}"'),
                       encoding="utf-8")


def fax_pdf(cli: Cli, project: Path, out: Path, *options: str) -> Path:
    result = cli("preview", "3", "start", "--channel", "fax", "--contact", "M0001", "--out",
                 str(out), "--now", NOW, *options, "-c", str(project))
    assert result.code == 0, result.err
    return out / "M0001.fax.pdf"


def words(pdf: Path) -> dict[str, tuple[float, float, float, float]]:
    """Each word of the first page → its box in points from the top left (pdftotext)."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    return {m["word"]: (float(m["x0"]), float(m["y0"]), float(m["x1"]), float(m["y1"]))
            for m in re.finditer(r'<word xMin="(?P<x0>[\d.]+)" yMin="(?P<y0>[\d.]+)" '
                                 r'xMax="(?P<x1>[\d.]+)" yMax="(?P<y1>[\d.]+)">(?P<word>[^<]+)',
                                 html)}


def ink(page: Image.Image, box: tuple[float, float, float, float]) -> float:
    """The share of black dots of ``page`` inside ``box`` (points from the top left)."""
    across, down = page.info["dpi"]
    x0, y0, x1, y1 = box
    region = page.crop((round(x0 * across / POINTS_PER_INCH), round(y0 * down / POINTS_PER_INCH),
                        round(x1 * across / POINTS_PER_INCH), round(y1 * down / POINTS_PER_INCH)))
    histogram = region.convert("L").histogram()
    return sum(histogram[:128]) / max(sum(histogram), 1)


def test_the_page_embeds_a_bold_face_and_carries_the_header_line(
        cli: Cli, project: Path, tmp_path: Path) -> None:
    with_sender_fax(project)
    pdf = fax_pdf(cli, project, tmp_path)
    weights = embedded_weights(pdf.read_bytes())
    assert max(weights.values()) >= 600, weights  # the title and the help desk number
    assert min(weights.values()) <= 500, weights  # the text itself is not bold
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    header = text.splitlines()[0]
    for part in ("JR 東日本メカトロニクス株式会社", "J-Mups センター", f"FAX {SENDER_FAX}",
                 "2021/07/19 01:00", "1/1"):
        assert part in header, header
    # Above the body, inside the margin a fax machine prints: not in the top 4 mm it loses.
    top = words(pdf)["1/1"][1] * MM_PER_INCH / POINTS_PER_INCH
    assert 4 < top < 18, top


def test_the_header_and_the_help_desk_number_survive_g3_at_fax_resolution(
        cli: Cli, project: Path, tmp_path: Path) -> None:
    pdf = fax_pdf(cli, project, tmp_path)
    tiff = tmp_path / "page.tif"
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg3",
                    "-r204x196", f"-sOutputFile={tiff}", str(pdf)], check=True)
    with Image.open(tiff) as page:
        assert (page.mode, page.info["compression"], page.info["dpi"]) == (
            "1", "group3", (204, 196))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.save(ARTIFACTS / "fax-page-g3-204x196.png")
        boxes = words(pdf)
        assert "0120-220-766" in boxes and "1/1" in boxes
        for word in ("2021/07/19", "1/1", "0120-220-766"):
            assert ink(page, boxes[word]) > 0.05, word  # strokes, not a blank box
        band_top = (0, 0, 595, 4 * POINTS_PER_INCH / MM_PER_INCH)
        assert ink(page, band_top) == 0  # left to the fax machine and HylaFAX's tag line


def test_preview_writes_the_page_at_fax_resolution(cli: Cli, project: Path,
                                                   tmp_path: Path) -> None:
    fax_pdf(cli, project, tmp_path, "--fax-resolution")
    with Image.open(tmp_path / "M0001.fax.png") as image:
        assert image.format == "PNG" and image.mode == "1"
        assert image.width == 1728  # a G3 scan line
        assert [round(d) for d in image.info["dpi"]] == [204, 196]
    refused = cli("preview", "3", "start", "--fax-resolution", "-c", str(project))
    assert refused.code == 2 and "--fax-resolution" in refused.err
    assert "Traceback" not in refused.err


def test_the_tag_line_is_the_header_in_ascii_with_hylafax_page_count() -> None:
    sent_at = datetime(2021, 7, 18, 16, 0, tzinfo=UTC)  # the clock's UTC: 01:00 in Tokyo
    sender = Sender("JR 東日本メカトロニクス株式会社", "J-Mups", "", "03-5555-0100")
    assert tag_line(sender, sent_at, TOKYO) == (
        "2021/07/19 01:00|FROM J-Mups FAX 03-5555-0100|P.%%P/%%T")
    japanese_only = Sender("テスト株式会社", "電子マネー", "", "")
    assert tag_line(japanese_only, sent_at, TOKYO) == "2021/07/19 01:00|FROM FAX %%l|P.%%P/%%T"
    codes = Sender("100% Pay|Net", "J-Mups", "", "")
    assert "100%" not in tag_line(codes, sent_at, TOKYO)


def test_check_says_when_no_japanese_font_has_a_bold_face(project: Path,
                                                          tmp_path: Path) -> None:
    ipaex = subprocess.run(["fc-list", "-f", "%{file}\n", "IPAexGothic"], capture_output=True,
                           text=True, check=True).stdout.split()
    if not ipaex:
        pytest.fail("IPAex Gothic is not installed: bash scripts/install installs it")
    fonts_conf = tmp_path / "fonts.conf"
    fonts_conf.write_text(f'<?xml version="1.0"?><fontconfig><dir>{Path(ipaex[0]).parent}</dir>'
                          f"<cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>")

    def check(env: dict[str, str]) -> str:
        done = subprocess.run([sys.executable, "-m", "dispatcher", "check", *CHECK_AT, "-c",
                               str(project)],
                              capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    regular_only = check({**os.environ, "FONTCONFIG_FILE": str(fonts_conf), "COLUMNS": "300"})
    assert "no Japanese font with a bold face is installed (IPAexGothic has none)" in regular_only
    assert "no Japanese font with a bold face" not in check({**os.environ, "COLUMNS": "300"})
