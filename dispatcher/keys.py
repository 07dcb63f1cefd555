"""The deployment's secret: the key that signs every value linking a report back to a
delivery (the bounce address's token, the DSN envelope id, the Message-ID, the Twilio
callback's URL), so that nobody without it can aim a report at a delivery.

The key file is made on first use, owner-only. `dispatcher secret rotate` puts a new key
first; the old one is kept, marked with the time it was retired, and still verifies for
``[receipts] old_secret_days`` (reports about mail signed with it arrive for days).

File format, one key a line, the current one first::

    9f2c…e1
    4ab0…77 retired 2026-12-02T04:00:00+00:00
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.errors import SetupError, single
from dispatcher.files import PRIVATE_FILE, PRIVATE_FOLDER, replace_file

_HEADER = ("# dispatcher: the key that signs every token linking a report to a delivery.\n"
           "# Keep it private; `dispatcher secret rotate` makes a new one.\n")


@dataclass(frozen=True)
class Keys:
    """The current key, which signs, and the retired ones, which still verify."""

    current: bytes
    retired: tuple[tuple[bytes, datetime], ...] = ()

    def sign(self, purpose: str, message: str, length: int) -> str:
        """``length`` hex digits of an HMAC-SHA256 of ``message`` for ``purpose``."""
        return _mac(self.current, purpose, message)[:length]

    def signatures(self, purpose: str, message: str, length: int, now: datetime,
                   keep: timedelta) -> list[str]:
        """The signature under every key that still verifies at ``now``, current first."""
        return [_mac(key, purpose, message)[:length] for key in self._live(now, keep)]

    def verifies(self, purpose: str, message: str, signature: str, now: datetime,
                 keep: timedelta) -> bool:
        signature = signature.lower()
        if len(signature) < 8:  # a truncated signature proves nothing
            return False
        return any(hmac.compare_digest(signature, _mac(key, purpose, message)[:len(signature)])
                   for key in self._live(now, keep))

    def _live(self, now: datetime, keep: timedelta) -> list[bytes]:
        return [self.current] + [key for key, retired_at in self.retired
                                 if now - retired_at <= keep]


def _mac(key: bytes, purpose: str, message: str) -> str:
    return hmac.new(key, f"{purpose}\n{message}".encode(), hashlib.sha256).hexdigest()


@dataclass
class KeyFile:
    """The key file at ``path``: made on first use, read again whenever it changes (a
    rotation by `dispatcher secret rotate` reaches a running daemon)."""

    path: Path
    _seen: tuple[int, int] | None = None
    _keys: Keys | None = None

    def keys(self) -> Keys:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._keys = _write(self.path, Keys(secrets.token_bytes(32)))
            stat = self.path.stat()
        seen = (stat.st_mtime_ns, stat.st_size)
        if self._keys is None or seen != self._seen:
            self._keys, self._seen = _read(self.path), seen
        return self._keys

    def rotate(self, now: datetime, keep: timedelta) -> Keys:
        """A new current key; the old one retired at ``now``; keys retired longer than
        ``keep`` ago are dropped."""
        old = self.keys()
        kept = [(key, at) for key, at in old.retired if now - at <= keep]
        retired = ((old.current, now), *kept)
        self._keys = _write(self.path, Keys(secrets.token_bytes(32), retired))
        return self._keys


def _write(path: Path, keys: Keys) -> Keys:
    lines = [keys.current.hex()] + [f"{key.hex()} retired {at.isoformat()}"
                                    for key, at in keys.retired]
    replace_file(path, (_HEADER + "\n".join(lines) + "\n").encode("ascii"), PRIVATE_FILE,
                 PRIVATE_FOLDER)
    return keys


def _read(path: Path) -> Keys:
    current: bytes | None = None
    retired: list[tuple[bytes, datetime]] = []
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            key = bytes.fromhex(words[0])
            if len(key) < 16:
                raise ValueError("shorter than 16 bytes")
            if len(words) == 1 and current is None:
                current = key
            elif len(words) == 3 and words[1] == "retired":
                retired.append((key, _aware(datetime.fromisoformat(words[2]))))
            else:
                raise ValueError('expected "HEX" once, then "HEX retired TIME"')
        except ValueError as exc:
            raise single(SetupError, f"{path}:{number}", f"not a key line ({exc})") from None
    if current is None:
        raise single(SetupError, str(path), "holds no current key (a line with one key "
                                            "only); delete the file to make a new one")
    return Keys(current, tuple(retired))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

