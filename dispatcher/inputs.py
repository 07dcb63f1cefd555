"""Everything a command reads from disk, validated together: config, contacts, templates.

Problems from every source are reported at once, so an operator fixes them in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dispatcher.config import Config, load_config
from dispatcher.contacts import Contact, in_audience, load_contacts
from dispatcher.documents import require_japanese_font
from dispatcher.errors import InputError, Problem
from dispatcher.render import Renderer, check_rendering
from dispatcher.windows import Channel


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


def check_inputs(inputs: Inputs, now: datetime) -> list[Problem]:
    """Every problem rendering would meet: each template for each contact of each broadcast."""
    config = inputs.config
    broadcasts = [w for w in config.windows if w.broadcast]
    audiences = {w.id: in_audience(inputs.contacts, w.audience) for w in broadcasts}
    renderer = Renderer(config.settings.templates_dir, config)
    problems = check_rendering(renderer, broadcasts, audiences,
                               config.channels[Channel.SMS].max_segments, now)
    if any(Channel.FAX in w.channels for w in broadcasts):
        try:
            require_japanese_font()
        except InputError as exc:
            problems.extend(exc.problems)
    return problems


def _template_problems(folder: Path) -> list[Problem]:
    if not folder.is_dir():
        return [Problem(str(folder), "no such folder (set by [dispatcher].templates)")]
    return []
