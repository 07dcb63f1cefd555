"""Fax pages rendered in batches are the pages rendered one by one: the same text, the
same embedded Japanese font, A4, the same page count, even for a page that runs over."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from dispatcher.render import FaxDocument, Renderer, render_pdf, render_pdfs
from dispatcher.send import Backends, make_backends, send_session
from dispatcher.table import (
    Channel,
    Contact,
    Phase,
    build_notice,
    find_window,
    load_config,
    load_inputs,
)
from tests.faxpage import embedded_weights
from tests.helpers import TOKYO, project_ledger, use_contacts


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


class PacedClock:
    """A send's clock: each wait (the fax line's rate) moves it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_coro().__qualname__.endswith(".renew_leases"):
            until = self.now + timedelta(seconds=seconds)
            while self.now < until:  # the lease renewer's waits do not move it
                await asyncio.sleep(0.001)
            return
        self.now += timedelta(seconds=max(seconds, 0.001))
        await asyncio.sleep(0)


async def test_the_page_laid_out_at_the_claim_is_the_page_sent(project: Path) -> None:
    """One fax line, a fax every 100 s: the pages are laid out when the batch is claimed,
    at AM1:00, and those very pages go out, minutes later (laid out again at the send,
    each had a new minute on its header line and was laid out twice)."""
    text = project.read_text(encoding="utf-8").replace('channels = ["fax", "email", "sms"]',
                                                       'channels = ["fax"]', 1)
    project.write_text(text.replace("[channels.fax]\n", "[channels.fax]\nconcurrency = 1\n"
                                    "rate_per_second = 0.01\n", 1), encoding="utf-8")
    use_contacts(project, "".join(f"F{n},店{n},担当,03-5555-{1000 + n},,,emoney\n"
                                  for n in range(3)))
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    paced = PacedClock(datetime(2021, 7, 19, 1, 0, tzinfo=TOKYO))
    notice = build_notice(window, window.planned, Phase.START)
    async with (project_ledger(project) as ledger,
                Backends(make_backends(inputs.config, [Channel.FAX], {})) as backends):
        await send_session(inputs, ledger, backends, notice, [Channel.FAX], "schedule",
                           paced.clock, sleep=paced.sleep)
    assert paced.now >= datetime(2021, 7, 19, 1, 3, tzinfo=TOKYO)  # the last went later
    pdfs = sorted((project.parent / "var" / "outbox" / "fax").glob("*/*.pdf"))
    headers = [subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout for pdf in pdfs]
    assert len(headers) == 3 and all("2021/07/19 01:00" in h for h in headers)
