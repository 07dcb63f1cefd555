"""The ledger: notices, deliveries and the audit log (SQLAlchemy 2, async drivers)."""

from dispatcher.ledger.engine import engine_url, is_unavailable
from dispatcher.ledger.records import (
    Claimed,
    DeliveryRecord,
    NewDelivery,
    NoticeRecord,
    OutageRecord,
    Outcome,
)
from dispatcher.ledger.states import FINAL_STATES, UNSENT_STATES, DeliveryState, NoticeState
from dispatcher.ledger.store import Ledger, peek
from dispatcher.ledger.tables import metadata

__all__ = [
    "FINAL_STATES",
    "UNSENT_STATES",
    "Claimed",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "NewDelivery",
    "NoticeRecord",
    "NoticeState",
    "OutageRecord",
    "Outcome",
    "engine_url",
    "is_unavailable",
    "metadata",
    "peek",
]
