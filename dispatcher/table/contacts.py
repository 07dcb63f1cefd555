"""``contacts/*.csv`` → Contact, with numbers in E.164 and e-mail syntax checked.

Files may be UTF-8 (with or without BOM) or CP932, which is what Excel in Japan saves.
Every bad row is reported as ``file:line: column: reason``, all of them at once.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dispatcher.errors import ArgumentError, ContactError, Problem, single
from dispatcher.table.addresses import checked_email, checked_phone
from dispatcher.table.windows import Channel

COLUMNS = ("id", "merchant", "name", "fax", "email", "sms", "tags", "phone")
REQUIRED_COLUMNS = ("id", "merchant", "fax", "email", "sms")
ADDRESS_COLUMNS = ("fax", "email", "sms", "phone")


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

    def address(self, channel: Channel) -> str | None:
        if channel is Channel.VOICE:
            return self.phone or self.sms
        value: str | None = getattr(self, channel.value)  # fax, email, sms: the fields
        return value


def load_contacts(folder: Path, known: KnownContacts | None = None) -> tuple[Contact, ...]:
    """Every contact of every ``*.csv`` in ``folder``; ContactError lists every bad row.
    ``known``: what the last load found, so that only what changed is validated again."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise single(ContactError, str(folder), f"{what} (set by [dispatcher].contacts)")
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise single(ContactError, str(folder), "holds no *.csv contacts file")
    contacts, problems = (known or KnownContacts()).read(files)
    problems.extend(_duplicate_ids(contacts))
    if problems:
        raise ContactError(problems)
    return tuple(contacts)


class KnownContacts:
    """The contacts the last load validated, for the next load (a daemon's reload): a file
    whose bytes are unchanged is taken whole, and in a changed file each row whose fields
    are unchanged is taken as it was. Validating the numbers and addresses is nearly all
    of the cost (about 20 s at 100,000 contacts), and an edit changes a few rows."""

    def __init__(self) -> None:
        self._files: dict[str, _KnownFile] = {}

    def read(self, files: Iterable[Path]) -> tuple[list[Contact], list[Problem]]:
        """The contacts and problems of ``files``; what is known afterwards is theirs."""
        known, self._files = self._files, {}
        contacts: list[Contact] = []
        problems: list[Problem] = []
        for path in files:
            name, raw = str(path), path.read_bytes()
            digest = hashlib.blake2b(raw, digest_size=16).digest()
            found = known.get(name)
            if found is None or found.digest != digest:
                rows = _Rows(found.rows if found is not None else {}, {})
                found = _KnownFile(digest, *parse_contacts_file(raw, name, rows), rows.now)
            self._files[name] = found
            contacts.extend(found.contacts)
            problems.extend(found.problems)
        return contacts, problems


@dataclass(frozen=True)
class _KnownFile:
    digest: bytes
    contacts: list[Contact]
    problems: list[Problem]
    rows: dict[bytes, Contact]


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
                        ) -> tuple[list[Contact], list[Problem]]:
    """Contacts and problems of one CSV file's bytes; ``name`` is used in messages.
    ``validated``: rows validated before, taken as they were, and where each new one is
    kept."""
    validated = validated or _Rows({}, {})
    text = _decode(raw)
    if text is None:
        return [], [Problem(name, "is neither UTF-8 nor CP932 (Shift_JIS) text")]
    rows = _rows(text)
    header = next(rows, None)
    if header is None:
        return [], [Problem(name, "is empty: the first line must name the columns "
                                  + ", ".join(COLUMNS))]
    columns = [c.strip().lower() for c in header[1]]
    header_problems = _check_header(columns, f"{name}:{header[0]}")
    if header_problems:
        return [], header_problems
    contacts: list[Contact] = []
    problems: list[Problem] = []
    try:
        for line, fields in rows:
            if not any(f.strip() for f in fields):
                continue
            where = f"{name}:{line}"
            key = _Rows.key(columns, fields)
            contact = validated.contact(key, where)
            if contact is None:
                contact, row_problems = _contact(dict(zip(columns, fields, strict=False)),
                                                 len(fields), len(columns), where)
                problems.extend(row_problems)
                if contact is not None:
                    validated.now[key] = contact
            if contact is not None:
                contacts.append(contact)
    except _BrokenCsv as exc:
        problems.append(Problem(f"{name}:{exc.line}", f"unreadable CSV: {exc}"))
    return contacts, problems


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
    unknown = [c for c in columns if c and c not in COLUMNS]
    if unknown:
        problems.append(Problem(where, f"unknown column(s) {', '.join(unknown)} "
                                       f"(expected {', '.join(COLUMNS)})"))
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

    values = {k: (v or "").strip() for k, v in row.items()}
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
    return Contact(contact_id, merchant, values.get("name", ""), fax, email, sms, tags,
                   where, phone), []


@functools.lru_cache(maxsize=4096)
def _shared_tags(text: str) -> frozenset[str]:
    """One frozenset per distinct tags cell: 100,000 contacts share a handful of them."""
    return frozenset(text.split())


def _duplicate_ids(contacts: list[Contact]) -> list[Problem]:
    first_seen: dict[str, Contact] = {}
    problems = []
    for contact in contacts:
        if contact.id in first_seen:
            problems.append(Problem(f"{contact.source}: id",
                                    f"{contact.id!r} is already used at "
                                    f"{first_seen[contact.id].source}"))
        else:
            first_seen[contact.id] = contact
    return problems


class _BrokenCsv(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
