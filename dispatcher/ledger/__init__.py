"""The ledger: notices, deliveries and the audit log (SQLAlchemy 2, async drivers)."""

from dispatcher.ledger.store import (
    Claimed,
    DeliveryRecord,
    Ledger,
    NoticeRecord,
    Outcome,
    PlannedDelivery,
    engine_url,
    peek,
)
from dispatcher.ledger.tables import FINAL_STATES, DeliveryState, NoticeState

__all__ = [
    "FINAL_STATES",
    "Claimed",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "NoticeRecord",
    "NoticeState",
    "Outcome",
    "PlannedDelivery",
    "engine_url",
    "peek",
]
