"""What the ledger hands out and takes in: plain values, no SQLAlchemy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatcher.ledger.states import Cause, DeliveryState


@dataclass(frozen=True)
class NoticeRecord:
    id: int
    window_id: str
    slot: str
    phase: str
    state: str
    triggered_by: str
    created_at: datetime
    finished_at: datetime | None
    sending_since: datetime | None  # when sending began, or was last retried

    @property
    def retrying_since(self) -> datetime:
        return self.sending_since or self.created_at


@dataclass(frozen=True)
class NoticeFailure:
    """A notice the daemon could not start or send: since when, how many tries in a row,
    the last reason, and what the operator can do about it (``fix``: a code the send path
    explains)."""

    window_id: str
    slot: str
    phase: str
    since: datetime
    at: datetime
    failures: int
    reason: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "slot": self.slot, "since": self.since,
                "at": self.at, "failures": self.failures, "reason": self.reason}


@dataclass(frozen=True)
class AlertTrouble:
    """An operators' alert that did not reach an address: ``error`` says why; None when it
    was claimed and never sent (its sender stopped holding it)."""

    alert: str
    channel: str
    address: str
    at: datetime
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"alert": self.alert, "channel": self.channel, "address": self.address,
                "at": self.at, "error": self.error or "claimed, never sent"}


@dataclass(frozen=True)
class Opening:
    """A notice being planned by ``triggered_by``: when each of its channels may go
    (``releases``: every channel of the notice, None for one not released yet; a
    release only ever moves earlier) and why (``cause``: the daemon's schedule or an
    operator)."""

    window_id: str
    slot: str
    phase: str
    triggered_by: str
    releases: Mapping[str, datetime | None]
    cause: Cause = Cause.SCHEDULE


@dataclass(frozen=True, slots=True)
class NewDelivery:
    contact_id: str
    channel: str
    address: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds under a lease; ``attempts`` counts this one. ``epoch``
    names this claim: an outcome is written only by the owner of the same claim."""

    id: int
    contact_id: str
    channel: str
    address: str
    attempts: int
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a claimed delivery, written back in batches. An attempt that is not
    ``counted`` (the provider never answered) is taken back from the delivery's attempts."""

    delivery_id: int
    state: DeliveryState
    next_attempt_at: datetime | None = None
    error_code: str | None = None
    last_error: str | None = None
    provider_ref: str | None = None
    sent_at: datetime | None = None
    counted: bool = True
    epoch: int = 0  # the claim it is the outcome of (Claimed.epoch)


@dataclass(frozen=True)
class OutageRecord:
    """A time a channel's provider did not answer while a notice was being sent."""

    notice_id: int
    channel: str
    began_at: datetime
    ended_at: datetime
    waiting: int  # deliveries that were waiting when it came back
    probes: int
    error: str


@dataclass(frozen=True)
class PublicationRecord:
    """What was last published about a window, and its version."""

    window_id: str
    sequence: int  # 0 when first published, one more on each change
    updated_at: datetime
    content: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    notice_id: int
    contact_id: str
    channel: str
    address: str
    state: str
    attempts: int
    error_code: str | None
    last_error: str | None
    provider_ref: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class ForgedReport:
    """A report whose token did not verify: where it came from, what it claimed."""

    source: str
    claimed: str
    detail: str
    digest: str
    received_at: datetime | None = None


@dataclass(frozen=True)
class Report:
    """What a provider reported about one delivery after taking it. ``state`` is where it
    moves the delivery (None: recorded only, e.g. a delay); PENDING with ``retry_at`` asks
    for a new message. ``digest`` names the report, so reading it again changes nothing."""

    delivery_id: int
    source: str
    status: str
    code: str | None
    detail: str
    digest: str
    state: DeliveryState | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class EventRecord:
    delivery_id: int
    source: str
    status: str
    code: str | None
    detail: str
    received_at: datetime


@dataclass(frozen=True)
class Confirmation:
    """A contact confirmed a notice: how (``link``, ``voice``, ``helpdesk``), through which
    delivery (None: by hand), by whom, when."""

    notice_id: int
    contact_id: str
    via: str
    actor: str
    at: datetime
    delivery_id: int | None = None


@dataclass(frozen=True)
class Suppression:
    """An address not to be sent to again on ``channel``, why, and since when."""

    channel: str
    address: str
    reason: str
    detail: str
    source: str
    at: datetime
