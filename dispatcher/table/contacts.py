"""``contacts/*.csv`` → Contact, with numbers in E.164 and e-mail syntax checked.

Files may be UTF-8 (with or without BOM) or CP932, which is what Excel in Japan saves.
Every bad row is reported as ``file:line: column: reason``, all of them at once. A bad row
is set aside (left out of every audience, shown to the help desk), not fatal, unless a
file has more of them than a share of its rows: then it is probably the wrong file, and
refused whole. Columns beyond the known ones are kept for the templates
(``contact.extra.memo``).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import hashlib
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dispatcher.errors import ArgumentError, ContactError, Problem, single
from dispatcher.table.addresses import checked_email, checked_phone
from dispatcher.table.windows import Channel

COLUMNS = ("id", "merchant", "name", "fax", "email", "sms", "tags", "phone")
REQUIRED_COLUMNS = ("id", "merchant", "fax", "email", "sms")
ADDRESS_COLUMNS = ("fax", "email", "sms", "phone")
DEFAULT_INVALID_ROWS_PERCENT = 1.0
SET_ASIDE_SHOWN = 20  # rows set aside a list names (a banner, `send`); `check` names all
# What Excel writes, saving as CP932, for a character CP932 cannot hold (𠮷, ①, …)
REPLACED = ("?", "\ufffd")


@dataclass(frozen=True, slots=True)
class Contact:
    """One registered incident contact (障害発生時の連絡先) of a merchant."""

    id: str
    merchant: str
    name: str
    fax: str | None
    email: str | None
    sms: str | None
    tags: frozenset[str]
    source: str
    phone: str | None = None  # the number a voice call rings, if not the SMS one
    extra_fields: tuple[tuple[str, str], ...] = ()  # the file's other columns, in order

    def address(self, channel: Channel) -> str | None:
        if channel is Channel.VOICE:
            return self.phone or self.sms
        value: str | None = getattr(self, channel.value)  # fax, email, sms: the fields
        return value

    @property
    def extra(self) -> dict[str, str]:
        """The file's other columns by name, for the templates: ``contact.extra.memo``."""
        return dict(self.extra_fields)


@dataclass(frozen=True, slots=True)
class SetAside:
    """A row that failed validation: left out of every audience, shown by `check`,
    `status`, `unreached` and the console, with its values as typed, so that the help
    desk can phone the merchant."""

    source: str  # file:line
    id: str
    merchant: str
    name: str
    tags: frozenset[str]
    typed: tuple[tuple[str, str], ...]  # the address columns as typed (fax, email, …)
    problems: tuple[Problem, ...]

    @property
    def reason(self) -> str:
        """What is wrong with it, column by column: ``email: 'm0002@': There must…``."""
        parts = []
        for problem in self.problems:
            column = problem.where.removeprefix(self.source).lstrip(": ")
            parts.append(f"{column}: {problem.what}" if column else problem.what)
        return "; ".join(parts)


@dataclass
class ContactsRead:
    """What the contacts files hold: the contacts, the rows set aside, the problems that
    refuse the table (a file unreadable, a header wrong, too many bad rows) and warnings."""

    contacts: list[Contact] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, other: ContactsRead) -> None:
        self.contacts += other.contacts
        self.set_aside += other.set_aside
        self.problems += other.problems
        self.warnings += other.warnings


def load_contacts(folder: Path, known: KnownContacts | None = None) -> tuple[Contact, ...]:
    """Every valid contact of every ``*.csv`` in ``folder`` (see ``read_contacts``)."""
    return tuple(read_contacts(folder, known).contacts)


def read_contacts(folder: Path, known: KnownContacts | None = None,
                  invalid_rows_percent: float = DEFAULT_INVALID_ROWS_PERCENT) -> ContactsRead:
    """Every contact of every ``*.csv`` in ``folder``, and the rows set aside; ContactError
    lists what refuses the table: a file that cannot be read, a wrong header, or more bad
    rows in a file than ``invalid_rows_percent`` of its rows (one is always allowed).
    ``known``: what the last load found, so that only what changed is validated again."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise single(ContactError, str(folder), f"{what} (set by [dispatcher].contacts)")
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise single(ContactError, str(folder), "holds no *.csv contacts file")
    found = (known or KnownContacts()).read(files, invalid_rows_percent)
    if found.problems:
        raise ContactError(found.problems)
    return found


class KnownContacts:
    """The contacts the last load validated, for the next load (a daemon's reload): a file
    whose bytes are unchanged is taken whole, and in a changed file each row whose fields
    are unchanged is taken as it was. Validating the numbers and addresses is nearly all
    of the cost (about 20 s at 100,000 contacts), and an edit changes a few rows."""

    def __init__(self) -> None:
        self._files: dict[str, _KnownFile] = {}

    def read(self, files: Iterable[Path],
             invalid_rows_percent: float = DEFAULT_INVALID_ROWS_PERCENT) -> ContactsRead:
        """What ``files`` hold; what is known afterwards is theirs."""
        known, self._files = self._files, {}
        found = ContactsRead()
        seen: dict[str, Contact] = {}  # ids taken by the files before, to their rows
        for path in files:
            name, raw = str(path), path.read_bytes()
            digest = hashlib.blake2b(raw, digest_size=16).digest()
            file = known.get(name)
            if file is None or file.digest != digest:
                rows = _Rows(file.rows if file is not None else {}, {})
                file = _KnownFile(digest, parse_contacts_file(raw, name, rows), rows.now)
            self._files[name] = file
            read = _within_share(_without_duplicates(file.read, seen), name,
                                 invalid_rows_percent)
            seen.update((c.id, c) for c in read.contacts)
            found.add(read)
        return found


@dataclass(frozen=True)
class _KnownFile:
    digest: bytes
    read: ContactsRead
    rows: dict[bytes, Contact]


def _within_share(read: ContactsRead, name: str, percent: float) -> ContactsRead:
    """``read``, or its bad rows as problems when there are more than ``percent`` of the
    file's rows (at least one is allowed): then it is probably the wrong file."""
    rows = len(read.contacts) + len(read.set_aside)
    allowed = max(1, math.floor(rows * percent / 100)) if percent else 0
    if len(read.set_aside) <= allowed:
        return read
    problems = [Problem(name, f"{len(read.set_aside):,} of its {rows:,} rows are invalid, "
                              f"more than [dispatcher] invalid_rows_percent = {percent:g} "
                              f"allows ({allowed:,}): the whole file is refused, it is "
                              f"probably not the contacts file meant")]
    problems += [p for row in read.set_aside for p in row.problems]
    return ContactsRead([], [], [*read.problems, *problems], read.warnings)


def _without_duplicates(read: ContactsRead, seen: dict[str, Contact]) -> ContactsRead:
    """``read`` with each contact whose id a row before it has (in this file or in the
    files before) set aside: the ledger knows a contact by its id, so the second would
    never be sent to. It counts toward the file's share of bad rows: a stale copy of the
    contacts file is refused whole, not silently preferred."""
    first_seen = dict(seen)
    kept, aside = [], list(read.set_aside)
    for contact in read.contacts:
        first = first_seen.setdefault(contact.id, contact)
        if first is contact:
            kept.append(contact)
            continue
        problem = Problem(f"{contact.source}: id",
                          f"{contact.id!r} is already used at {first.source}")
        typed = tuple((c, value) for c in ADDRESS_COLUMNS
                      if (value := getattr(contact, c)))
        aside.append(SetAside(contact.source, contact.id, contact.merchant, contact.name,
                              contact.tags, typed, (problem,)))
    if len(kept) == len(read.contacts):
        return read
    return ContactsRead(kept, aside, read.problems, read.warnings)


class _Rows:
    """A file's rows validated before (``known``), and those validated now (``now``), by a
    digest of the header and the row's fields."""

    def __init__(self, known: dict[bytes, Contact], now: dict[bytes, Contact]) -> None:
        self.known, self.now = known, now

    @staticmethod
    def key(columns: list[str], fields: list[str]) -> bytes:
        text = "\x1e".join(columns) + "\x1d" + "\x1f".join(fields)
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def contact(self, key: bytes, where: str) -> Contact | None:
        contact = self.known.get(key)
        if contact is None:
            return None
        self.now[key] = contact = (contact if contact.source == where
                                   else dataclasses.replace(contact, source=where))
        return contact


def in_audience(contacts: Iterable[Contact], audience: Iterable[str]) -> list[Contact]:
    """Contacts carrying any of the ``audience`` tags; an empty audience means everyone."""
    wanted = set(audience)
    return [c for c in contacts if not wanted or c.tags & wanted]


def find_contact(contacts: Iterable[Contact], contact_id: str) -> Contact:
    for contact in contacts:
        if contact.id == contact_id:
            return contact
    raise single(ArgumentError, "--contact", f"no contact with id {contact_id!r}")


def parse_contacts_file(raw: bytes, name: str, validated: _Rows | None = None
                        ) -> ContactsRead:
    """The contacts, rows set aside, problems and warnings of one CSV file's bytes; ``name``
    is used in messages. ``validated``: rows validated before, taken as they were, and
    where each new one is kept."""
    validated = validated or _Rows({}, {})
    text = _decode(raw)
    if text is None:
        return ContactsRead(problems=[Problem(name, "is neither UTF-8 nor CP932 (Shift_JIS) "
                                                    "text")])
    rows = _rows(text)
    header = next(rows, None)
    if header is None:
        return ContactsRead(problems=[Problem(name, "is empty: the first line must name the "
                                                    "columns " + ", ".join(COLUMNS))])
    columns = [c.strip().lower() for c in header[1]]
    header_problems = _check_header(columns, f"{name}:{header[0]}")
    if header_problems:
        return ContactsRead(problems=header_problems)
    found = ContactsRead(warnings=_extra_column_warnings(columns, f"{name}:{header[0]}"))
    try:
        for line, fields in rows:
            if not any(f.strip() for f in fields):
                continue
            where = f"{name}:{line}"
            key = _Rows.key(columns, fields)
            contact = validated.contact(key, where)
            if contact is None:
                row = dict(zip(columns, fields, strict=False))
                row.update((c, "") for c in columns if c not in row)  # a row cut short
                contact, row_problems = _contact(row, len(fields), len(columns), where)
                if contact is None:
                    found.set_aside.append(_set_aside(row, where, row_problems))
                    continue
                validated.now[key] = contact
            found.contacts.append(contact)
            found.warnings += _replaced_characters(contact)
    except _BrokenCsv as exc:
        found.problems.append(Problem(f"{name}:{exc.line}", f"unreadable CSV: {exc}"))
    return found


def _decode(raw: bytes) -> str | None:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each record with the line it starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    previous_end = 0
    try:
        for fields in reader:
            yield previous_end + 1, fields
            previous_end = reader.line_num
    except csv.Error as exc:
        raise _BrokenCsv(previous_end + 1, str(exc)) from None


def _check_header(columns: list[str], where: str) -> list[Problem]:
    problems = []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(Problem(where, f"missing column(s) {', '.join(missing)} "
                                       f"(expected {', '.join(COLUMNS)})"))
    if "" in columns:
        problems.append(Problem(where, f"column {columns.index('') + 1} has no name"))
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        problems.append(Problem(where, f"column(s) {', '.join(repeated)} appear twice"))
    return problems


def _contact(
    row: dict[str, str], width: int, expected: int, where: str
) -> tuple[Contact | None, list[Problem]]:
    if width > expected:
        return None, [Problem(where, f"{width} fields, but the header names {expected} columns")]
    problems: list[Problem] = []

    def fail(column: str, reason: str) -> None:
        problems.append(Problem(f"{where}: {column}", reason))

    values = {k: _one_line(v or "") for k, v in row.items()}
    for column, value in values.items():
        control = next((c for c in value if _hidden_control(c)), None)
        if control is not None:  # ESC, BEL…: printed raw, they would drive a terminal
            fail(column, f"holds the control character U+{ord(control):04X}, which no "
                         "name or address has; correct the row")
    contact_id, merchant = values.get("id", ""), values.get("merchant", "")
    if not contact_id:
        fail("id", "missing")
    if not merchant:
        fail("merchant", "missing")
    fax = checked_phone(values.get("fax", ""), "fax", fail)
    sms = checked_phone(values.get("sms", ""), "sms", fail)
    phone = checked_phone(values.get("phone", ""), "phone", fail)
    email = checked_email(values.get("email", ""), fail)
    if not any(values.get(c) for c in ADDRESS_COLUMNS):
        fail("fax/email/sms/phone", "a contact needs at least one address")
    if problems:
        return None, problems
    tags = _shared_tags(values.get("tags", ""))
    extra = tuple((column, value) for column, value in values.items()
                  if column not in COLUMNS)
    return Contact(contact_id, merchant, values.get("name", ""), fax, email, sms, tags,
                   where, phone, extra), []


def _extra_column_warnings(columns: list[str], where: str) -> list[str]:
    """A warning for an extra column whose name is close to a known one (``tag``,
    ``phnoe``): kept for the templates, it would otherwise leave the known one empty."""
    warnings = []
    for column in columns:
        close = difflib.get_close_matches(column, COLUMNS, n=1, cutoff=0.75)
        if column not in COLUMNS and close and close[0] not in columns:
            warnings.append(f"{where}: column {column!r} is not one of {', '.join(COLUMNS)}: "
                            f"kept for the templates as contact.extra; did you mean "
                            f"{close[0]!r}?")
    return warnings


_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _hidden_control(character: str) -> bool:
    """A control character (ESC, BEL…) or a bidi override (it reverses what is shown)."""
    return unicodedata.category(character) == "Cc" or character in _BIDI


def _one_line(value: str) -> str:
    """A cell as one line: a line break typed in a cell (Alt+Enter in Excel) or a tab is a
    space."""
    return _LINE_BREAKS.sub(" ", value).strip()


def _printable(value: str) -> str:
    """A cell of a row set aside as it is shown: its control characters as U+FFFD."""
    return "".join("\ufffd" if _hidden_control(c) else c for c in _one_line(value))


def _set_aside(row: dict[str, str], where: str, problems: list[Problem]) -> SetAside:
    values = {k: _printable(v or "") for k, v in row.items()}
    typed = tuple((c, values[c]) for c in ADDRESS_COLUMNS if values.get(c))
    return SetAside(where, values.get("id", ""), values.get("merchant", ""),
                    values.get("name", ""), _shared_tags(values.get("tags", "")), typed,
                    tuple(problems))


def _replaced_characters(contact: Contact) -> list[str]:
    """A warning for a name holding what Excel writes for a character CP932 cannot hold."""
    return [f"{contact.source}: {column}: {value!r} holds {mark!r}, which Excel writes "
            f"for a character Shift_JIS (CP932) cannot hold (𠮷, ①, …): the notices would "
            f"print it; correct it, or save the file as UTF-8 (CSV UTF-8)"
            for column, value in (("merchant", contact.merchant), ("name", contact.name))
            for mark in REPLACED if mark in value][:1]


@functools.lru_cache(maxsize=4096)
def _shared_tags(text: str) -> frozenset[str]:
    """One frozenset per distinct tags cell: 100,000 contacts share a handful of them."""
    return frozenset(text.split())




class _BrokenCsv(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
