"""Everything a command reads from disk, validated together: config, contacts, templates.

Problems from every source are reported at once, so an operator fixes them in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dispatcher.errors import InputError, Problem
from dispatcher.table.config import Config, load_config
from dispatcher.table.contacts import Contact, KnownContacts, load_contacts


@dataclass(frozen=True)
class Inputs:
    config: Config
    contacts: tuple[Contact, ...]


def load_inputs(config_path: Path, known: KnownContacts | None = None) -> Inputs:
    """The validated config and contacts; InputError lists every problem of both.
    ``known``: the contacts the last load validated (only what changed is validated)."""
    config = load_config(config_path)
    problems: list[Problem] = []
    contacts: tuple[Contact, ...] = ()
    try:
        contacts = load_contacts(config.settings.contacts_dir, known)
    except InputError as exc:
        problems.extend(exc.problems)
    problems.extend(_template_problems(config.settings.templates_dir))
    if problems:
        raise InputError(problems)
    return Inputs(config, contacts)


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


def _template_problems(folder: Path) -> list[Problem]:
    if not folder.is_dir():
        return [Problem(str(folder), "no such folder (set by [dispatcher].templates)")]
    return []
