"""What every backend is: it takes one rendered message and returns a Receipt or raises.

Errors are typed (``TransientError``, ``PermanentError``, ``UncertainError`` from
``dispatcher.errors``) and carry the provider's own code; the dispatcher decides what to
retry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from dispatcher.errors import ChannelError, SetupError, single
from dispatcher.render import FaxDocument, Message


@dataclass(frozen=True)
class Outgoing:
    """One delivery to send: the rendered message and what identifies it."""

    delivery_id: int
    notice_key: str
    message: Message
    sent_at: datetime
    attempt: int
    tag: str  # names this delivery at the provider, unique across ledgers
    document: FaxDocument | None = None


@dataclass(frozen=True)
class Receipt:
    """The provider took the message: its reference (queue id, SID, job id, file)."""

    provider_ref: str | None


class Backend(ABC):
    """One way to send one channel's messages."""

    name: ClassVar[str]
    # True where acceptance is not the end: the backend is polled until each job ends.
    confirms_later: ClassVar[bool] = False
    poll_seconds = 10.0  # how often a backend that confirms later is asked

    async def start(self) -> None:  # noqa: B027 - most backends have nothing to open
        """Open connections; called once before the first send."""

    @abstractmethod
    async def send(self, outgoing: Outgoing) -> Receipt:
        """Send one message, or raise a ChannelError subclass."""

    async def close(self) -> None:  # noqa: B027 - most backends have nothing to close
        """Release connections."""

    async def poll(self, refs: Sequence[str]) -> dict[str, ChannelError | None]:
        """For ``confirms_later`` backends: the references that have ended, each with None
        (delivered) or why it failed (TransientError where another attempt may succeed);
        raises TransientError when the provider cannot be asked now."""
        return {}


class MailTransport(Protocol):
    """Carries a ready MIME e-mail (its bytes, CRLF lines): the SMTP pool, or the e-mail
    outbox."""

    async def deliver(self, mail: bytes, recipient: str, key: str, tag: str
                      ) -> Receipt: ...

    async def close(self) -> None: ...


def secret(env: Mapping[str, str], name: str, key: str) -> str:
    """The value of environment variable ``name``; SetupError naming the key if unset."""
    value = env.get(name)
    if not value:
        raise single(SetupError, key, f"environment variable {name} is not set")
    return value
