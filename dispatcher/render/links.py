"""The personal link a notice that asks to confirm carries: ``{public_url}/c/{code}``.

The code names one delivery and carries its own proof: the delivery's id in Crockford's
base 32, then 8 characters (40 bits) of an HMAC of that id under the deployment's key
(``dispatcher.keys``). It verifies without the ledger, so a guessed or altered code is
turned away before any lookup. It stays short for an SMS (13 characters up to 33 million
deliveries), and forgives case and the look-alikes I, L and O, so that the help desk can
type it off a fax page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import segno

from dispatcher.keys import KeyFile, Keys
from dispatcher.table import Config

CONFIRM_PATH = "/c"
MAC_CHARS = 8  # 40 bits; the link page is rate-limited per address on top
_MAC_HEX = 10  # the same 40 bits as the key file signs them
_PURPOSE = "confirm"
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's: no i, l, o, u
_READ_AS = {"i": "1", "l": "1", "o": "0"}
# the id a preview's link is drawn with: as long as a real one gets for a long while
SAMPLE_DELIVERY_ID = 32 ** 6 - 1
_LONGEST = 24  # longer is not ours (and would be a long number to decode)


@dataclass(frozen=True)
class ConfirmLink:
    url: str
    code: str

    @property
    def printed(self) -> str:
        """The code as a fax page prints it, for a person to read out or type:
        ``3K7F-2M9Q-X1``."""
        upper = self.code.upper()
        return "-".join(upper[i:i + 4] for i in range(0, len(upper), 4))


@dataclass(frozen=True)
class ConfirmLinks:
    """Links signed with the current key; codes verified with it and with keys retired
    less than ``keep`` ago."""

    public_url: str
    keys: Callable[[], Keys]
    keep: timedelta

    @classmethod
    def of(cls, config: Config) -> ConfirmLinks | None:
        """The deployment's links; None where [http] has no public URL (no link page)."""
        if config.http.public_url is None:
            return None
        receipts = config.receipts
        return cls(config.http.public_url, KeyFile(receipts.secret_file).keys,
                   timedelta(days=receipts.old_secret_days))

    def link(self, delivery_id: int) -> ConfirmLink:
        mac = self.keys().sign(_PURPOSE, str(delivery_id), _MAC_HEX)
        return link_for(self.public_url, encode(delivery_id) + _encode_mac(mac))

    def delivery_of(self, code: str, now: datetime) -> int | None:
        """The delivery ``code`` names, or None if it is not a code that verifies."""
        code = normalised(code)
        if not MAC_CHARS < len(code) <= _LONGEST:
            return None
        delivery_id, mac = decode(code[:-MAC_CHARS]), decode(code[-MAC_CHARS:])
        if delivery_id is None or mac is None or mac >= 1 << (5 * MAC_CHARS):
            return None
        if not self.keys().verifies(_PURPOSE, str(delivery_id), f"{mac:0{_MAC_HEX}x}", now,
                                    self.keep):
            return None
        return delivery_id


def link_for(public_url: str, code: str) -> ConfirmLink:
    return ConfirmLink(f"{public_url.rstrip('/')}{CONFIRM_PATH}/{code}", code)


def sample_link(public_url: str) -> ConfirmLink:
    """What a preview shows: the shape and length of a real link, a code that verifies
    nothing."""
    return link_for(public_url, encode(SAMPLE_DELIVERY_ID) + "0" * MAC_CHARS)


def normalised(code: str) -> str:
    """``3K7F-2M9Q-X1`` as typed (any case, with hyphens or spaces, I/L/O for 1/1/0) in the
    form a link carries it."""
    kept = "".join(c for c in code.strip().lower() if c not in "- ")
    return "".join(_READ_AS.get(c, c) for c in kept)


def encode(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 32)
        digits = _ALPHABET[digit] + digits
        if number == 0:
            return digits


def decode(text: str) -> int | None:
    number = 0
    for char in text:
        digit = _ALPHABET.find(char)
        if digit < 0:
            return None
        number = number * 32 + digit
    return number


def _encode_mac(mac_hex: str) -> str:
    return encode(int(mac_hex, 16)).rjust(MAC_CHARS, "0")


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code, an SVG ``data:`` URI for an ``<img>``; level Q (a quarter of
    it may be lost), since a fax line drops and smears dots."""
    return str(segno.make(text, error="q").svg_data_uri(scale=4, border=4))
