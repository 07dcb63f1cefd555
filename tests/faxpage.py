"""What a fax PDF carries, read back with pypdf and fontTools: the weight of each embedded
font, as its own OS/2 table says (a bold name over regular outlines is not bold)."""

from __future__ import annotations

import io

import pypdf
from fontTools.ttLib import TTFont

_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


def embedded_weights(pdf: bytes) -> dict[str, int]:
    """Each embedded font's name (without its subset prefix) → its OS/2 weight class."""
    weights: dict[str, int] = {}
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        for reference in page["/Resources"]["/Font"].values():
            font = reference.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            stream = next(descriptor[k] for k in _FONT_FILES if k in descriptor).get_object()
            program = TTFont(io.BytesIO(stream.get_data()))
            name = str(font["/BaseFont"]).split("+")[-1]
            weights[name] = program["OS/2"].usWeightClass
    return weights
