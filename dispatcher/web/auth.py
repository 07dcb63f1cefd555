"""Who may use the console: the users file (argon2id hashes and a session version each),
signed session cookies carrying a CSRF token and that version (so a logout, a new password
or a removed user ends every session at once), and a bounded limit on wrong passwords."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from dispatcher.errors import ArgumentError, InputError, SetupError, single
from dispatcher.files import PRIVATE_FILE, PRIVATE_FOLDER, replace_file

log = logging.getLogger("dispatcher.console")

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106) defaults
_DUMMY = _HASHER.hash("not a password of anyone")  # same work whether the user exists or not


@dataclass(frozen=True)
class User:
    name: str
    digest: str  # argon2id
    # one more on each password change and logout: older sessions end. A new user starts
    # at a random one, so a name removed and added again never accepts an old cookie.
    version: int


class Users:
    """The users file: one ``name:hash:version`` a line, readable by its owner only. It is
    read on every request, so a change made by `dispatcher user …` counts at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[str]:
        return list(self._read())

    def add(self, name: str, password: str) -> bool:
        """Add ``name``, or set a new password (which ends its sessions); True if new."""
        if not _NAME.match(name):
            raise single(ArgumentError, "NAME", f"{name!r}: use 1-64 letters, digits, '.', '_'"
                                                " or '-'")
        if len(password) < 8:
            raise single(ArgumentError, "password", "at least 8 characters")
        digest = _HASHER.hash(password)
        with self._updating() as users:
            old = users.get(name)
            users[name] = User(name, digest, old.version + 1 if old else _first_version())
        return old is None

    def set_password(self, name: str, password: str) -> None:
        """A new password for an existing user; ArgumentError if there is none."""
        self.version_of(name)
        self.add(name, password)

    def remove(self, name: str) -> None:
        """Remove ``name``: their sessions end at once."""
        with self._updating() as users:
            if name not in users:
                raise self._unknown(name)
            del users[name]

    def end_sessions(self, name: str) -> None:
        """Every session of ``name`` ends (a logout)."""
        with self._updating() as users:
            if name in users:
                users[name] = replace(users[name], version=users[name].version + 1)

    def version(self, name: str) -> int | None:
        """The user's session version; None if there is no such user."""
        user = self._read().get(name)
        return user.version if user else None

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is theirs, else None. Slow (argon2): call it off the
        event loop."""
        stored = self._read().get(name)
        try:
            matches = _HASHER.verify(stored.digest if stored else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        return stored if matches else None

    def version_of(self, name: str) -> int:
        """The user's session version; ArgumentError if there is no such user."""
        version = self.version(name)
        if version is None:
            raise self._unknown(name)
        return version

    def _unknown(self, name: str) -> InputError:
        return single(ArgumentError, "NAME", f"no user {name!r} in {self.path}")

    @contextlib.contextmanager
    def _updating(self) -> Iterator[dict[str, User]]:
        """Read, change and write the file under a lock (the console and the command line
        may both write it)."""
        self.path.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            users = self._read()
            yield users
            text = "".join(f"{u.name}:{u.digest}:{u.version}\n" for u in users.values())
            replace_file(self.path, text.encode("utf-8"), PRIVATE_FILE, PRIVATE_FOLDER)

    def _read(self) -> dict[str, User]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        users = {}
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            digest, _, version = rest.partition(":")
            if name and digest:
                users[name] = User(name, digest, int(version) if version.isdigit() else 0)
        return users


def _first_version() -> int:
    """A new user's first session version: random (48 bits), not 0, so that the versions
    of a name never come back after ``remove`` and ``add``."""
    return secrets.randbits(48)


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    version: int = 0
    key: bytes = b""  # the mark of the key it was signed with (Sessions.key_mark)


class Sessions:
    """Session cookies signed with the console's key; older than ``max_age``, refused. A
    cookie names its user's session version, which the console checks against the users
    file on every request. Given the key's file, the key is read again whenever the file
    changes: deleting it logs everyone out at once (a new key is made), no restart. A key
    file that cannot be read as a key (empty, short, not hex) is refused: at the start, a
    clear error; later, the key in force stays, and the error is logged."""

    def __init__(self, key: bytes | Path, max_age: timedelta) -> None:
        if not isinstance(key, bytes | Path):
            raise TypeError(f"a key or its file, not {type(key).__name__}")
        self._file = key if isinstance(key, Path) else None
        self._seen: tuple[int, int] | None = None  # the key file's inode and change time
        self._take_key(key if isinstance(key, bytes) else b"")
        self._max_age = max_age
        if self._file is not None and not self._reread(strict=True):
            raise single(SetupError, str(self._file), "cannot be read as the console's key")

    @property
    def key_mark(self) -> bytes:
        """Names the key in force (a digest): a session issued under another has ended."""
        self._signer()
        return self._mark

    def issue(self, user: str, version: int) -> tuple[str, Session]:
        signer = self._signer()
        session = Session(user, secrets.token_urlsafe(32), version, self._mark)
        return signer.dumps({"u": session.user, "c": session.csrf,
                             "v": session.version}), session

    def _take_key(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)
        self._mark = hashlib.sha256(key).digest()[:8]

    def _signer(self) -> URLSafeTimedSerializer:
        """The serializer of the key in force: the key file's, read again if it changed."""
        if self._file is not None:
            self._reread(strict=False)
        return self._serializer

    def _reread(self, strict: bool) -> bool:
        """Take the key file's key if the file changed; False if it cannot be a key."""
        assert self._file is not None
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            secret_key(self._file)  # deleted: everyone logged out, a new key made
            stat = self._file.stat()
        mark = (stat.st_ino, stat.st_mtime_ns)
        if mark == self._seen:
            return True
        try:
            key = read_key(self._file)
        except (OSError, ValueError) as exc:
            if not strict:
                log.error("console key file %s cannot be read as a key (%s): the key in force "
                          "stays; delete the file to make a new one", self._file, exc)
            return False
        self._seen = mark
        self._take_key(key)
        return True

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer().loads(cookie, max_age=int(self._max_age.total_seconds()))
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not {"u", "c", "v"} <= data.keys() \
                or not isinstance(data["v"], int):
            return None
        return Session(str(data["u"]), str(data["c"]), data["v"], self._mark)


_SALT = "dispatcher-console-session"
KEY_BYTES = 32


def read_key(path: Path) -> bytes:
    """The key in ``path`` (hex): ValueError if it is not one of at least 32 bytes (an
    empty or truncated file must never sign a cookie)."""
    with path.open("rb") as handle:  # one read of one file, whatever replaces it meanwhile
        text = handle.read().decode("ascii").strip()
    key = bytes.fromhex(text)
    if len(key) < KEY_BYTES:
        raise ValueError(f"{len(key)} bytes, fewer than {KEY_BYTES}")
    return key


def secret_key(path: Path) -> bytes:
    """The key that signs session cookies: read from ``path``, made there on first use."""
    try:
        return read_key(path)
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_BYTES)
        replace_file(path, (key.hex() + "\n").encode("ascii"), PRIVATE_FILE, PRIVATE_FOLDER)
        return key


class AddressLimiter:
    """Failures per source address (an IPv6 address by its /64), in memory that stays
    bounded whatever is tried: after ``limit`` failures in ``window`` the address is
    refused without looking at what it sends.

    The blocks are kept apart from the counters: failures from thousands of other
    addresses push counters out (least recent first), never a block before it ends. The
    blocks hold at most ``4 * capacity`` addresses; past that (each took ``limit``
    failures), the one ending soonest goes first."""

    def __init__(self, limit: int, clock: Callable[[], datetime],
                 window: timedelta = timedelta(minutes=15), capacity: int = 4096) -> None:
        self._limit = limit
        self._clock = clock
        self._window = window
        self._failures = _Failures(capacity)
        self._blocks: dict[str, datetime] = {}  # address key: when its block ends
        self._block_capacity = 4 * capacity

    def blocked(self, address: str) -> bool:
        key = _address_key(address)
        until = self._blocks.get(key)
        if until is not None and until > self._clock():
            return True
        self._blocks.pop(key, None)
        return self._failures.count(key, self._since()) >= self._limit

    def failed(self, address: str) -> None:
        key, now = _address_key(address), self._clock()
        self._failures.add(key, now, self._since())
        if self._failures.count(key, self._since()) >= self._limit:
            self._block(key, now + self._window)

    def take(self, address: str) -> bool:
        """Count a failure now, before what the address sends is checked (False, nothing
        counted, if it is blocked): concurrent tries cost what one after the other do."""
        if self.blocked(address):
            return False
        self.failed(address)
        return True

    def give_back(self, address: str) -> None:
        """The try ``take`` counted succeeded: it was no failure."""
        key = _address_key(address)
        self._failures.remove_one(key)
        if self._failures.count(key, self._since()) < self._limit:
            self._blocks.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures) + len(self._blocks)

    def _block(self, key: str, until: datetime) -> None:
        self._blocks[key] = until
        if len(self._blocks) > self._block_capacity:
            now = self._clock()
            for ended in [k for k, end in self._blocks.items() if end <= now]:
                del self._blocks[ended]
            while len(self._blocks) > self._block_capacity:
                del self._blocks[min(self._blocks, key=self._blocks.__getitem__)]

    def _since(self) -> datetime:
        return self._clock() - self._window


class LoginLimiter:
    """Wrong passwords, counted in memory that stays bounded whatever is tried.

    - Per source address (an ``AddressLimiter``): after ``limit`` failures in ``window``,
      logins from there are refused without looking at the password.
    - Per user: after ``limit`` failures in ``window``, each further login for that user
      waits ``2 ** (failures - limit)`` seconds (at most ``MAX_DELAY``) before the password
      is checked: guessing slows down, but nobody can lock an operator out.
    - A login counts as a failure from its address before its password is checked
      (``take``), and is given back if right. A user's logins under way count as failures
      for the delay of the next (``turn``): N guesses at once each wait as the last of N
      would (at most ``MAX_DELAY``), while no lock is held, so queued guesses never keep
      the operator's own login waiting longer than that.

    Each table keeps at most ``capacity`` entries, the least recently failed dropped first,
    and forgets an entry ``window`` after its first failure.
    """

    MAX_DELAY = 30.0

    def __init__(self, limit: int, clock: Callable[[], datetime],
                 window: timedelta = timedelta(minutes=15), capacity: int = 4096) -> None:
        self._limit = limit
        self._clock = clock
        self._window = window
        self._by_address = AddressLimiter(limit, clock, window, capacity)
        self._by_user = _Failures(capacity)
        self._turns: dict[str, int] = {}  # user: its logins under way

    def blocked(self, address: str) -> bool:
        return self._by_address.blocked(address)

    def delay(self, user: str) -> float:
        """How long a login for ``user`` waits before its password is checked."""
        return self._delay(self._by_user.count(user, self._since()))

    def _delay(self, failures: int) -> float:
        over = failures - self._limit
        return 0.0 if over < 0 else min(2.0 ** over, self.MAX_DELAY)

    def failed(self, user: str, address: str) -> None:
        self._by_address.failed(address)
        self.failed_user(user)

    def take(self, address: str) -> bool:
        """A failure from ``address`` counted before the password is checked; False if
        the address is blocked (nothing counted)."""
        return self._by_address.take(address)

    def give_back(self, address: str) -> None:
        """A try ``take`` counted that was never checked (an error, a shutdown)."""
        self._by_address.give_back(address)

    def failed_user(self, user: str) -> None:
        self._by_user.add(user, self._clock(), self._since())

    def succeeded(self, user: str, address: str | None = None) -> None:
        """The password was right: the user's failures are forgotten, and the failure
        ``take`` counted for ``address`` is given back."""
        self._by_user.forget(user)
        if address is not None:
            self._by_address.give_back(address)

    @contextlib.contextmanager
    def turn(self, user: str) -> Iterator[float]:
        """A login of ``user`` under way, and how long it waits before its password is
        checked: the delay of the user's failures and of the logins under way before it,
        as if each of them had failed (at most ``MAX_DELAY``)."""
        ahead = self._turns.get(user, 0)
        self._turns[user] = ahead + 1
        try:
            yield self._delay(self._by_user.count(user, self._since()) + ahead)
        finally:
            left = self._turns[user] - 1
            if left:
                self._turns[user] = left
            else:
                del self._turns[user]  # none under way: memory stays flat

    @property
    def entries(self) -> int:
        """What the limiter holds in memory: addresses, users, and users' turns."""
        return len(self._by_address) + len(self._by_user) + len(self._turns)

    def _since(self) -> datetime:
        return self._clock() - self._window


class _Failures:
    """Failures per key: (count, first failure), least recently failed first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def count(self, key: str, since: datetime) -> int:
        entry = self._entries.get(key)
        return entry[0] if entry is not None and entry[1] >= since else 0

    def add(self, key: str, now: datetime, since: datetime) -> None:
        count = self.count(key, since)
        first = self._entries[key][1] if count else now
        self._entries[key] = (count + 1, first)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def remove_one(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] <= 1:
                del self._entries[key]
            else:
                self._entries[key] = (entry[0] - 1, entry[1])


def _address_key(address: str) -> str:
    """An IPv6 address counts by its /64 (one host holds a whole /64); IPv4 as it is."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
