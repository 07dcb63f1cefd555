"""One exception tree for the whole project.

Bad input (configuration, contacts, templates, arguments) raises an ``InputError``
subclass carrying every problem found, each naming where it is; the CLI prints them
and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what is wrong."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class DispatcherError(Exception):
    """Base of every error this project raises on purpose."""


class InputError(DispatcherError):
    """Bad input: one or more problems, all reported at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(InputError):
    """``config.toml`` is missing, unreadable or invalid."""


class ContactError(InputError):
    """A contacts file or row is invalid."""


class TemplateError(InputError):
    """A template is missing or does not render."""


class ArgumentError(InputError):
    """A command-line argument names something that does not exist or is malformed."""


def single(error_type: type[InputError], where: str, what: str) -> InputError:
    """Build an input error holding one problem."""
    return error_type([Problem(where, what)])


class SetupError(InputError):
    """The machine lacks something the project installs (a font, a program)."""
