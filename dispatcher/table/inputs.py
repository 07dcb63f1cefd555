"""Everything a command reads from disk, validated together: config, contacts, templates.

Problems from every source are reported at once, so an operator fixes them in one pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dispatcher.errors import InputError, Problem
from dispatcher.table.config import Config, load_config
from dispatcher.table.contacts import (
    Contact,
    ContactsRead,
    KnownContacts,
    SetAside,
    read_contacts,
)


@dataclass(frozen=True)
class Inputs:
    config: Config
    contacts: tuple[Contact, ...]
    # the templates folder as read with the rest (name relative to it → text): what is
    # rendered is the table in force, never a file edited since (an edit that fails its
    # check never reaches a send)
    templates: Mapping[str, str] = field(default_factory=dict)
    # rows that failed validation, left out of every audience (see contacts.SetAside)
    set_aside: tuple[SetAside, ...] = ()
    contact_warnings: tuple[str, ...] = ()  # a name as Excel mangled it, …

    def set_aside_in(self, audience: Iterable[str]) -> list[SetAside]:
        """The rows set aside whose tags put them in ``audience`` (empty: everyone)."""
        wanted = set(audience)
        return [row for row in self.set_aside if not wanted or row.tags & wanted]


def load_inputs(config_path: Path, known: KnownContacts | None = None) -> Inputs:
    """The validated config and contacts; InputError lists every problem of both.
    ``known``: the contacts the last load validated (only what changed is validated)."""
    config = load_config(config_path)
    problems: list[Problem] = []
    contacts = ContactsRead()
    try:
        contacts = read_contacts(config.settings.contacts_dir, known,
                                 config.settings.invalid_rows_percent)
    except InputError as exc:
        problems.extend(exc.problems)
    templates, template_problems = read_templates(config.settings.templates_dir)
    problems.extend(template_problems)
    if problems:
        raise InputError(problems)
    return Inputs(config, tuple(contacts.contacts), templates, tuple(contacts.set_aside),
                  tuple(contacts.warnings))


# A cheap mark of every file the inputs come from (names, sizes, change times): an edit
# changes it.
Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(config_path: Path, inputs: Inputs | None) -> Fingerprint:
    """Names, sizes and change times of every file the daemon reads; cheap to compare."""
    paths = [config_path]
    if inputs is not None:
        settings = inputs.config.settings
        paths += sorted(settings.contacts_dir.glob("*.csv"))
        paths += sorted(p for p in settings.templates_dir.rglob("*") if p.is_file())
    marks = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        marks.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(marks)


class TableKeeper:
    """One table per process: the last good version of the files. An edit is read again
    (``read``, in a worker thread: 100,000 contacts take a while) and taken in only whole
    and valid; a rejected edit leaves the last good table in force, and ``rejected`` says
    why until the next edit is taken in. The daemon keeps one, which its console shares; a
    console alone keeps its own."""

    def __init__(self, config_path: Path, check: Callable[[Inputs], None] | None = None
                 ) -> None:
        self.config_path = config_path
        self._check = check  # more than the files' own validity: InputError if not
        self._known = KnownContacts()  # a reload validates only the rows edited
        self._inputs: Inputs | None = None
        self._files: Fingerprint = ()
        self.rejected: tuple[Problem, ...] = ()
        self.load_seconds = 0.0  # how long the last good read took

    @property
    def inputs(self) -> Inputs:
        """The table in force."""
        if self._inputs is None:
            raise RuntimeError(f"{self.config_path} has not been read yet")
        return self._inputs

    def edit_seen(self) -> Fingerprint | None:
        """The files' marks when they changed since the last read (or none was taken in
        yet), else None."""
        files = fingerprint(self.config_path, self._inputs)
        return None if self._inputs is not None and files == self._files else files

    def read(self) -> Inputs:
        """The files, loaded and checked; InputError lists what is wrong. Blocking."""
        started = time.monotonic()
        inputs = load_inputs(self.config_path, self._known)
        if self._check is not None:
            self._check(inputs)
        self.load_seconds = time.monotonic() - started
        return inputs

    def take(self, inputs: Inputs, files: Fingerprint) -> None:
        """``inputs``, read after the files were seen as ``files``, is the table in force.
        Those marks are kept, so that an edit made during the read is read next; from the
        new table's folders if it moved them."""
        same = self._inputs is not None and _folders(self._inputs) == _folders(inputs)
        self._files = files if same else fingerprint(self.config_path, inputs)
        self._inputs = inputs
        self.rejected = ()

    def refuse(self, problems: Iterable[Problem], files: Fingerprint) -> None:
        """The edit seen as ``files`` is not taken in: the last good table stays."""
        self._files = files
        self.rejected = tuple(problems)

    async def refresh(self) -> Inputs:
        """The table in force, after reading an edit if there is one (off the loop).
        InputError only while no good table has been read."""
        files = self.edit_seen()
        if files is None:
            return self.inputs
        try:
            inputs = await asyncio.to_thread(self.read)
        except InputError as exc:
            if self._inputs is None:
                raise
            self.refuse(exc.problems, files)
            return self._inputs
        self.take(inputs, files)
        return inputs


def _folders(inputs: Inputs) -> tuple[Path, Path]:
    settings = inputs.config.settings
    return settings.contacts_dir, settings.templates_dir


def read_templates(folder: Path) -> tuple[dict[str, str], list[Problem]]:
    """Every template (``*.j2``) of the templates folder by its name relative to it, and
    the problems of those that cannot be read as UTF-8. Other files there (a logo the fax
    page shows, an editor's swap file) are not the table's."""
    if not folder.is_dir():
        return {}, [Problem(str(folder), "no such folder (set by [dispatcher].templates)")]
    found: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted(p for p in folder.rglob("*.j2") if p.is_file()):
        try:
            found[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"cannot be read as UTF-8 text: {exc}"))
    return found, problems
