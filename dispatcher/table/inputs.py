"""Everything a command reads from disk, validated together: config, contacts, templates.

Problems from every source are reported at once, so an operator fixes them in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dispatcher.errors import InputError, Problem
from dispatcher.table.config import Config, load_config
from dispatcher.table.contacts import Contact, load_contacts


@dataclass(frozen=True)
class Inputs:
    config: Config
    contacts: tuple[Contact, ...]


def load_inputs(config_path: Path) -> Inputs:
    """The validated config and contacts; InputError lists every problem of both."""
    config = load_config(config_path)
    problems: list[Problem] = []
    contacts: tuple[Contact, ...] = ()
    try:
        contacts = load_contacts(config.settings.contacts_dir)
    except InputError as exc:
        problems.extend(exc.problems)
    problems.extend(_template_problems(config.settings.templates_dir))
    if problems:
        raise InputError(problems)
    return Inputs(config, contacts)


def _template_problems(folder: Path) -> list[Problem]:
    if not folder.is_dir():
        return [Problem(str(folder), "no such folder (set by [dispatcher].templates)")]
    return []
