"""Fax pages rendered in batches are the pages rendered one by one: the same text, the
same embedded Japanese font, A4, the same page count, even for a page that runs over."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

from dispatcher.render import FaxDocument, Renderer, render_pdf, render_pdfs
from dispatcher.table import Channel, Contact, Phase, build_notice, find_window, load_config
from tests.faxpage import embedded_weights
from tests.helpers import TOKYO


def bodies(project: Path) -> list[str]:
    config = load_config(project)
    window = find_window(config.windows, "3")
    notice = build_notice(window, window.planned, Phase.START)
    renderer = Renderer(config.settings.templates_dir, config)
    sent_at = datetime(2021, 7, 19, 1, tzinfo=TOKYO)
    names = ["さくら書店", "東京駅前ストア 八重洲北口店", "ｶﾌｪ ﾓｶ", "大阪なんば店" * 30]
    return [renderer.render(notice, Contact(f"C{n}", name, "担当", "+81312345678", None, None,
                                            frozenset(), "t.csv"), Channel.FAX, sent_at).body
            for n, name in enumerate(names)]


def pdf_text(document: FaxDocument, tmp_path: Path, tool: str) -> str:
    path = tmp_path / "page.pdf"
    path.write_bytes(document.pdf)
    arguments = [tool, str(path), "-"] if tool == "pdftotext" else [tool, str(path)]
    return subprocess.run(arguments, capture_output=True, text=True, check=True).stdout


def fonts(document: FaxDocument, tmp_path: Path) -> set[tuple[str, str]]:
    """(font name without its subset prefix, embedded) of each font in the PDF."""
    lines = pdf_text(document, tmp_path, "pdffonts").splitlines()[2:]
    return {(line.split()[0].split("+")[-1], line.split()[-5]) for line in lines}


def test_a_batch_gives_each_contact_the_page_it_would_get_alone(project: Path,
                                                                tmp_path: Path) -> None:
    pages = bodies(project)
    base = str(project.parent / "templates")
    together = render_pdfs(pages, base)
    alone = [render_pdf(page, base) for page in pages]
    assert [d.pages for d in together] == [d.pages for d in alone]
    assert alone[-1].pages == 2  # the long merchant name pushes the page over
    # Each page says its number of its own document's count, batched or not.
    assert [pdf_text(d, tmp_path, "pdftotext").count("1/1") for d in together] == [1, 1, 1, 0]
    assert all(n in pdf_text(together[-1], tmp_path, "pdftotext") for n in ("1/2", "2/2"))
    for batched, single in zip(together, alone, strict=True):
        assert pdf_text(batched, tmp_path, "pdftotext") == pdf_text(single, tmp_path,
                                                                   "pdftotext")
        assert fonts(batched, tmp_path) == fonts(single, tmp_path)
        assert {embedded for _, embedded in fonts(single, tmp_path)} == {"yes"}
        assert embedded_weights(batched.pdf) == embedded_weights(single.pdf)
        assert max(embedded_weights(single.pdf).values()) >= 600  # the title is bold
        assert "(A4)" in pdf_text(batched, tmp_path, "pdfinfo")


def test_a_page_with_another_head_is_rendered_alone(project: Path, tmp_path: Path) -> None:
    pages = bodies(project)[:2]
    other = pages[1].replace("<title>", "<title>別紙 ")
    base = str(project.parent / "templates")
    together = render_pdfs([pages[0], other], base)
    assert pdf_text(together[1], tmp_path, "pdftotext") == pdf_text(
        render_pdf(other, base), tmp_path, "pdftotext")


def test_bad_input_keeps_its_problems_across_a_process() -> None:
    """A fax page's worker process hands errors back pickled: the problems survive."""
    import pickle

    from dispatcher.errors import Problem, SetupError
    error = SetupError([Problem("fax", "no Japanese font is installed")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is SetupError and again.problems == error.problems
