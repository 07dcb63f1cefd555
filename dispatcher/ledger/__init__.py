"""The ledger: notices, deliveries and the audit log (SQLAlchemy 2, async drivers)."""

from dispatcher.ledger.engine import engine_url
from dispatcher.ledger.records import (
    Claimed,
    DeliveryRecord,
    NewDelivery,
    NoticeRecord,
    Outcome,
)
from dispatcher.ledger.states import FINAL_STATES, DeliveryState, NoticeState
from dispatcher.ledger.store import Ledger, peek
from dispatcher.ledger.tables import metadata

__all__ = [
    "FINAL_STATES",
    "Claimed",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "NewDelivery",
    "NoticeRecord",
    "NoticeState",
    "Outcome",
    "engine_url",
    "metadata",
    "peek",
]
