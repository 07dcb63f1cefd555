"""The fax page: rendered HTML → one A4 PDF with an embedded Japanese font (WeasyPrint).

A page is rendered once per distinct HTML: when the fax template does not name the
contact, a whole broadcast shares one PDF. WeasyPrint is imported on first use, so
commands that make no fax page start fast.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import logging
import re
import shutil
import subprocess
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.errors import SetupError, single

RECENT_PAGES = 8  # kept rendered: a page shared by every contact, and a few more
FONT_HINT = ("install one with `bash scripts/install` (Debian packages fonts-ipaexfont-gothic "
             "or fonts-noto-cjk)")


@dataclass(frozen=True)
class FaxDocument:
    pdf: bytes
    pages: int


def page_key(html: str) -> str:
    """What names a page by its content: the same HTML, the same page."""
    return hashlib.sha256(html.encode()).hexdigest()


class RecentPages:
    """The pages rendered last, by content (``page_key``), at most ``size`` of them: a
    page every contact shares is made once, and memory stays flat however many contacts
    have a page of their own."""

    def __init__(self, size: int = RECENT_PAGES) -> None:
        self._size = size
        self._pages: OrderedDict[str, FaxDocument] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._pages

    def get(self, key: str) -> FaxDocument | None:
        document = self._pages.get(key)
        if document is not None:
            self._pages.move_to_end(key)
        return document

    def put(self, key: str, document: FaxDocument) -> None:
        self._pages[key] = document
        self._pages.move_to_end(key)
        while len(self._pages) > self._size:
            self._pages.popitem(last=False)


class FaxPages:
    """Renders fax HTML to PDF one page at a time, as a preview needs it (sending renders
    ahead in batches: ``FaxPress``), keeping the recent pages (``RecentPages``)."""

    def __init__(self, base_url: Path) -> None:
        self._base_url = str(base_url)
        self._recent = RecentPages()
        self.rendered = 0

    def render(self, html: str) -> FaxDocument:
        key = page_key(html)
        document = self._recent.get(key)
        if document is None:
            document = render_pdf(html, self._base_url)
            self._recent.put(key, document)
            self.rendered += 1
        return document


def render_pdf(html: str, base_url: str) -> FaxDocument:
    """One HTML page → PDF bytes and its page count; needs a Japanese font."""
    document = _weasyprint_document(html, base_url)
    return FaxDocument(document.write_pdf(), len(document.pages))


def render_pdfs(htmls: Sequence[str], base_url: str) -> list[FaxDocument]:
    """Many fax pages at once, each as if rendered alone by ``render_pdf`` (the same text,
    font and page count): the documents are laid out as one, each from a new page, and the
    PDF is split again per document. The style sheet, the fonts and the PDF writing are
    paid once per batch instead of once per page, which is most of a page's cost. HTML
    that does not share the first one's head (or has no body) is rendered alone."""
    if len(htmls) < 2:
        return [render_pdf(html, base_url) for html in htmls]
    parts = [_split_body(html) for html in htmls]
    head = parts[0][0] if parts[0] is not None else None
    batch = [i for i, part in enumerate(parts) if part is not None and part[0] == head]
    documents: dict[int, FaxDocument] = {}
    if head is not None and len(batch) > 1:
        bodies = [part[1] for i in batch if (part := parts[i]) is not None]
        documents.update(zip(batch, _render_together(head, bodies, base_url), strict=True))
    return [documents.get(i) or render_pdf(html, base_url) for i, html in enumerate(htmls)]


_BODY = re.compile(r"^(?P<head>.*?<body[^>]*>)(?P<body>.*)</body>\s*</html>\s*$",
                   re.DOTALL | re.IGNORECASE)
_ANCHOR = "dispatcher-fax-"


def _split_body(html: str) -> tuple[str, str] | None:
    match = _BODY.match(html)
    return (match.group("head"), match.group("body")) if match else None


def _render_together(head: str, bodies: list[str], base_url: str) -> list[FaxDocument]:
    import pypdf

    sections = "".join(
        f'<section id="{_ANCHOR}{i}" style="{"break-before: page" if i else ""}">{body}</section>'
        for i, body in enumerate(bodies))
    document = _weasyprint_document(f"{head}{sections}</body></html>", base_url)
    starts: dict[int, int] = {}
    for number, page in enumerate(document.pages):
        for anchor in page.anchors:
            if anchor.startswith(_ANCHOR):
                starts.setdefault(int(anchor[len(_ANCHOR):]), number)
    bounds = [starts[i] for i in range(len(bodies))] + [len(document.pages)]
    reader = pypdf.PdfReader(io.BytesIO(document.write_pdf()))
    split = []
    for first, after in itertools.pairwise(bounds):
        writer = pypdf.PdfWriter()
        for number in range(first, after):
            writer.add_page(reader.pages[number])
        data = io.BytesIO()
        writer.write(data)
        split.append(FaxDocument(data.getvalue(), after - first))
    return split


def _weasyprint_document(html: str, base_url: str) -> Any:
    require_japanese_font()
    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html, base_url=base_url).render()


@functools.cache
def japanese_fonts() -> tuple[str, ...]:
    """Families of the installed fonts that cover Japanese, as fontconfig sees them."""
    if shutil.which("fc-list") is None:
        return ()
    listing = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True,
                             text=True, check=False).stdout
    return tuple(sorted({line.split(",")[0].strip() for line in listing.splitlines() if line}))


def require_japanese_font() -> None:
    """SetupError unless a Japanese font is installed: without one the page is empty boxes."""
    if not japanese_fonts():
        raise single(SetupError, "fax", f"no Japanese font is installed; {FONT_HINT}")


def write_png(pdf: Path, png: Path, dpi: int = 100) -> None:
    """The first page of ``pdf`` as a PNG (poppler's pdftoppm), for a person to look at."""
    if shutil.which("pdftoppm") is None:
        raise single(SetupError, str(png), "pdftoppm is missing; install it with "
                                           "`bash scripts/install` (Debian poppler-utils)")
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(png.with_suffix(""))], check=True, capture_output=True)
