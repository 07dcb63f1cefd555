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

    def __reduce__(self) -> tuple[type[InputError], tuple[tuple[Problem, ...]]]:
        # rebuilt from its problems when it crosses a process (a fax page's worker)
        return type(self), (self.problems,)


class ConfigError(InputError):
    """``config.toml`` is missing, unreadable or invalid."""


class ContactError(InputError):
    """A contacts file or row is invalid."""


class TemplateError(InputError):
    """A template is missing or does not render."""


class ArgumentError(InputError):
    """A command-line argument names something that does not exist or is malformed."""


class StaleError(ArgumentError):
    """An operator action made on a view the table has moved on from (the window was
    postponed since): refused, never applied to something else."""


class Interrupted(DispatcherError):
    """The operator pressed Ctrl-C: what was being handed over finished and is recorded,
    what was queued went back to pending (exit code 130, as a shell reports SIGINT)."""

    def __init__(self) -> None:
        super().__init__("interrupted: what was already handed over is recorded, the rest "
                         "is pending; run the same command again (or let the daemon) to "
                         "send it, nobody twice")


class LedgerError(DispatcherError):
    """The ledger database cannot be opened or written."""


class LedgerUnavailable(LedgerError):
    """The ledger did not answer (PostgreSQL stopped, SQLite locked past its timeout): worth
    waiting for, unlike a ledger that answers with an error."""


class ChannelError(DispatcherError):
    """A provider refused or failed a message; ``code`` is the provider's own code."""

    def __init__(self, message: str, code: str | None = None,
                 recipient: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.recipient = recipient


class TransientError(ChannelError):
    """Worth trying again later: a 4xx SMTP reply, a 429, a dropped connection."""


class UnavailableError(TransientError):
    """The provider itself, not this message, is the trouble: it cannot be reached, or it
    tells every sender to slow down. The channel pauses and probes; the attempt does not
    count against the delivery."""


class RefusedError(ChannelError):
    """The provider refuses this sender itself (a wrong SMTP password, 535): no message can
    go until the operator fixes the setup. The channel stops rather than try again (which
    could lock the account); its deliveries stay pending and the attempt does not count."""


class PermanentError(ChannelError):
    """Trying again will not help: a 5xx SMTP reply, an invalid number."""


class UncertainError(ChannelError):
    """The provider may have accepted the message (a 5xx on a send): do not retry blindly."""


def single(error_type: type[InputError], where: str, what: str) -> InputError:
    """Build an input error holding one problem."""
    return error_type([Problem(where, what)])


class SetupError(InputError):
    """The machine lacks something the project installs (a font, a program)."""
