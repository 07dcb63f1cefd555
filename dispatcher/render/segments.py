"""How many SMS segments a text takes. Pure.

A text made only of GSM 03.38 characters is sent as GSM-7: 160 septets in one segment,
153 per segment when split (extension characters such as ``€`` or ``{`` take two).
Anything else, Japanese included, is sent as UCS-2: 70 UTF-16 units in one segment, 67 per
segment when split; a character outside the BMP (most emoji) takes two units.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
_GSM7_BASIC_SET = frozenset(GSM7_BASIC)
_GSM7_EXTENSION_SET = frozenset(GSM7_EXTENSION)


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class Segments:
    encoding: Encoding
    units: int
    count: int

    def __str__(self) -> str:
        unit = "septets" if self.encoding is Encoding.GSM7 else "UTF-16 units"
        return f"{self.count} segment(s), {self.encoding.value}, {self.units} {unit}"


_LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


def capacity(encoding: Encoding, segments: int) -> int:
    """How many units ``segments`` segments hold in ``encoding``."""
    single, part = _LIMITS[encoding]
    return single if segments <= 1 else part * segments


def count_segments(text: str) -> Segments:
    """Encoding, length in that encoding's units, and the number of segments of ``text``."""
    septets = _gsm7_septets(text)
    if septets is None:
        return ucs2_segments(utf16_units(text))
    return _segments(Encoding.GSM7, septets)


def ucs2_segments(units: int) -> Segments:
    """The segments of a UCS-2 text of ``units`` UTF-16 units."""
    return _segments(Encoding.UCS2, units)


def utf16_units(text: str) -> int:
    if not text or max(text) < "\U00010000":  # all in the BMP: one unit each
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent as GSM-7."""
    return _gsm7_septets(text) is not None


def _segments(encoding: Encoding, units: int) -> Segments:
    single, part = _LIMITS[encoding]
    count = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, count)


def _gsm7_septets(text: str) -> int | None:
    """Septets ``text`` takes in GSM-7, or None if it has a character GSM-7 lacks."""
    septets = 0
    for char in text:
        if char in _GSM7_BASIC_SET:
            septets += 1
        elif char in _GSM7_EXTENSION_SET:
            septets += 2
        else:
            return None
    return septets
