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
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from dispatcher.errors import SetupError, single
from dispatcher.table import Sender, jp_stamp

RECENT_PAGES = 8  # kept rendered: a page shared by every contact, and a few more
FONT_HINT = ("install one with `bash scripts/install` (Debian packages fonts-mplus and "
             "fonts-ipaexfont-gothic, or fonts-noto-cjk)")
# Characters every fax page has (kana, and kanji of the greeting and the addressee): a
# font that draws them is a Japanese font, whatever languages fontconfig credits it with
# (M+ covers 5,287 kanji, fewer than fontconfig's "ja" asks for).
_JAPANESE_SAMPLE = "あア御中様平素利用誠記以上"
BOLD_WEIGHT = 180  # fontconfig's DemiBold, CSS 600: a face drawn heavier than the text


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


# Every page carries its number and the document's count ("1/1") in the top right margin
# box. Pages laid out together (``render_pdfs``) cannot count per document, so there each
# document is one page; one that is longer is laid out again alone.
PAGE_NUMBER = 'counter(page) "/" counter(pages)'
ONE_PAGE = '"1/1"'


def render_pdf(html: str, base_url: str) -> FaxDocument:
    """One HTML page → PDF bytes and its page count; needs a Japanese font."""
    document = _weasyprint_document(html, base_url, PAGE_NUMBER)
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
        together = zip(batch, _render_together(head, bodies, base_url), strict=True)
        documents.update((i, document) for i, document in together if document.pages == 1)
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
    document = _weasyprint_document(f"{head}{sections}</body></html>", base_url, ONE_PAGE)
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


def _weasyprint_document(html: str, base_url: str, page_number: str) -> Any:
    require_japanese_font()
    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    numbering = _numbering(page_number)
    return weasyprint.HTML(string=html, base_url=base_url).render(stylesheets=[numbering])


@functools.cache
def _numbering(page_number: str) -> Any:
    import weasyprint

    return weasyprint.CSS(string=f"@page {{ @top-right {{ content: {page_number}; }} }}")


@dataclass(frozen=True, order=True)
class Face:
    family: str
    weight: int  # fontconfig's scale: 80 regular, 200 bold


@functools.cache
def japanese_faces() -> tuple[Face, ...]:
    """The installed faces that draw Japanese text, as fontconfig sees them."""
    if shutil.which("fc-list") is None:
        return ()
    charset = " ".join(f"{ord(c):x}" for c in _JAPANESE_SAMPLE)
    listing = subprocess.run(["fc-list", f":charset={charset}", "family", "weight"],
                             capture_output=True, text=True, check=False).stdout
    return tuple(sorted({_face(line) for line in listing.splitlines() if ":weight=" in line}))


def _face(line: str) -> Face:
    families, _, weight = line.rpartition(":weight=")
    return Face(families.split(",")[0].strip(), int(float(weight)))


def japanese_fonts() -> tuple[str, ...]:
    """Families of the installed fonts that draw Japanese text."""
    return tuple(sorted({face.family for face in japanese_faces()}))


def missing_bold_face() -> str | None:
    """Why the fax page's bold text (its title, the help desk's number) would come out in
    the regular weight, or None: no Japanese face heavier than the text is installed, and
    the PDF would carry the regular outlines under a bold name."""
    faces = japanese_faces()
    if not faces or any(face.weight >= BOLD_WEIGHT for face in faces):
        return None
    return (f"no Japanese font with a bold face is installed ({', '.join(japanese_fonts())} "
            "has none): the fax page's bold title and help desk number come out in the "
            "regular weight; install fonts-mplus with `bash scripts/install`")


def require_japanese_font() -> None:
    """SetupError unless a Japanese font is installed: without one the page is empty boxes."""
    if not japanese_fonts():
        raise single(SetupError, "fax", f"no Japanese font is installed; {FONT_HINT}")


_TAG_LINE_TEXT = re.compile(r"[ -~]+")  # printable ASCII
_TAG_LINE_CODES = re.compile(r"[%|]")  # HylaFAX's escapes and field separator


def tag_line(sender: Sender, sent_at: datetime, tz: tzinfo) -> str:
    """The page's header line as HylaFAX's TagLineFormat, imaged above each page it sends:
    the same date and time (``sent_at`` in the configured zone ``tz``) and sender, then
    HylaFAX's own page count. HylaFAX draws it in a Latin font, so the sender is named by
    the first of its organisation and service written in ASCII, and without ``[sender] fax``
    by the server's own number (``%%l``)."""
    name = next((n for n in (sender.organisation, sender.service)
                 if _TAG_LINE_TEXT.fullmatch(n) and not _TAG_LINE_CODES.search(n)), "")
    number = f"FAX {sender.fax}" if sender.fax else "FAX %%l"
    origin = " ".join(part for part in ("FROM", name, number) if part)
    return f"{jp_stamp(sent_at.astimezone(tz))}|{origin}|P.%%P/%%T"


FAX_RESOLUTION = (204, 196)  # dots per inch across and down: G3 fine mode, as HylaFAX sends


def write_fax_png(pdf: Path, png: Path) -> None:
    """The first page of ``pdf`` as a fax machine receives it: Ghostscript's ``tiffg3`` at
    204×196 dpi, 1 bit a dot, as HylaFAX converts a PDF before it dials; saved as a PNG of
    those dots for a person to look at."""
    if shutil.which("gs") is None:
        raise single(SetupError, str(png), "Ghostscript (gs) is missing; install it with "
                                           "`bash scripts/install` (Debian ghostscript)")
    from PIL import Image

    tiff = png.with_suffix(".tif")
    across, down = FAX_RESOLUTION
    try:
        subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dFirstPage=1",
                        "-dLastPage=1", "-sDEVICE=tiffg3", f"-r{across}x{down}",
                        f"-sOutputFile={tiff}", str(pdf)], check=True, capture_output=True)
        with Image.open(tiff) as page:
            page.save(png, dpi=FAX_RESOLUTION)
    finally:
        tiff.unlink(missing_ok=True)


def write_png(pdf: Path, png: Path, dpi: int = 100) -> None:
    """The first page of ``pdf`` as a PNG (poppler's pdftoppm), for a person to look at."""
    if shutil.which("pdftoppm") is None:
        raise single(SetupError, str(png), "pdftoppm is missing; install it with "
                                           "`bash scripts/install` (Debian poppler-utils)")
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(png.with_suffix(""))], check=True, capture_output=True)
