"""Who may use the console: the users file (argon2id hashes), signed session cookies
carrying a CSRF token, and a limit on wrong passwords per user and per address."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from dispatcher.errors import ArgumentError, single
from dispatcher.files import replace_file

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106) defaults
_DUMMY = _HASHER.hash("not a password of anyone")  # same work whether the user exists or not
PRIVATE = 0o600  # the users' hashes and the session key: for the owner only


class Users:
    """The users file: one ``name:hash`` a line, readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[str]:
        return list(self._read())

    def add(self, name: str, password: str) -> bool:
        """Add ``name``, or set a new password; True if the user is new."""
        if not _NAME.match(name):
            raise single(ArgumentError, "NAME", f"{name!r}: use 1-64 letters, digits, '.', '_'"
                                                " or '-'")
        if len(password) < 8:
            raise single(ArgumentError, "password", "at least 8 characters")
        users = self._read()
        new = name not in users
        users[name] = _HASHER.hash(password)
        text = "".join(f"{n}:{h}\n" for n, h in users.items())
        replace_file(self.path, text.encode("utf-8"), PRIVATE)
        return new

    def verify(self, name: str, password: str) -> bool:
        stored = self._read().get(name)
        try:
            return _HASHER.verify(stored or _DUMMY, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {name: digest for name, digest in pairs}


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str


class Sessions:
    """Session cookies signed with the console's key; older than ``max_age``, refused."""

    def __init__(self, key: bytes, max_age: timedelta) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="dispatcher-console-session")
        self._max_age = max_age

    def issue(self, user: str) -> tuple[str, Session]:
        session = Session(user, secrets.token_urlsafe(32))
        return self._serializer.dumps({"u": session.user, "c": session.csrf}), session

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=int(self._max_age.total_seconds()))
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not {"u", "c"} <= data.keys():
            return None
        return Session(str(data["u"]), str(data["c"]))


def secret_key(path: Path) -> bytes:
    """The key that signs session cookies: read from ``path``, made there on first use."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        replace_file(path, (key.hex() + "\n").encode("ascii"), PRIVATE)
        return key


class LoginLimiter:
    """At most ``limit`` wrong passwords per user and per address in ``window``; a login
    asked for while over it is refused without looking at the password."""

    def __init__(self, limit: int, clock: Callable[[], datetime],
                 window: timedelta = timedelta(minutes=15)) -> None:
        self._limit = limit
        self._clock = clock
        self._window = window
        self._failures: dict[str, deque[datetime]] = defaultdict(deque)

    def blocked(self, user: str, address: str) -> bool:
        return any(len(self._recent(key)) >= self._limit
                   for key in (f"user:{user}", f"address:{address}"))

    def failed(self, user: str, address: str) -> None:
        for key in (f"user:{user}", f"address:{address}"):
            self._recent(key).append(self._clock())

    def _recent(self, key: str) -> deque[datetime]:
        times = self._failures[key]
        while times and self._clock() - times[0] > self._window:
            times.popleft()
        return times
