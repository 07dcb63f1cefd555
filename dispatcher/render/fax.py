"""The fax page: rendered HTML → one A4 PDF with an embedded Japanese font (WeasyPrint).

A page is rendered once per distinct HTML: when the fax template does not name the
contact, a whole broadcast shares one PDF. WeasyPrint is imported on first use, so
commands that make no fax page start fast.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dispatcher.errors import SetupError, single

FONT_HINT = ("install one with `bash scripts/install` (Debian packages fonts-ipaexfont-gothic "
             "or fonts-noto-cjk)")


@dataclass(frozen=True)
class FaxDocument:
    pdf: bytes
    pages: int


class FaxPages:
    """Renders fax HTML to PDF, caching by content so identical pages are made once."""

    def __init__(self, base_url: Path) -> None:
        self._base_url = str(base_url)
        self._cache: dict[str, FaxDocument] = {}
        self.rendered = 0

    def render(self, html: str) -> FaxDocument:
        key = hashlib.sha256(html.encode()).hexdigest()
        document = self._cache.get(key)
        if document is None:
            document = self._cache[key] = render_pdf(html, self._base_url)
            self.rendered += 1
        return document


def render_pdf(html: str, base_url: str) -> FaxDocument:
    """One HTML page → PDF bytes and its page count; needs a Japanese font."""
    require_japanese_font()
    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = weasyprint.HTML(string=html, base_url=base_url).render()
    return FaxDocument(document.write_pdf(), len(document.pages))


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
