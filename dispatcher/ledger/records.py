"""What the ledger hands out and takes in: plain values, no SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatcher.ledger.states import DeliveryState


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


@dataclass(frozen=True)
class NewDelivery:
    contact_id: str
    channel: str
    address: str


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds under a lease; ``attempts`` counts this one."""

    id: int
    contact_id: str
    channel: str
    address: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What happened to a claimed delivery, written back in batches."""

    delivery_id: int
    state: DeliveryState
    next_attempt_at: datetime | None = None
    error_code: str | None = None
    last_error: str | None = None
    provider_ref: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
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
