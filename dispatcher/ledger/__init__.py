"""The ledger: notices, deliveries and the audit log (SQLAlchemy 2, async drivers)."""

from dispatcher.ledger.engine import engine_url, is_unavailable
from dispatcher.ledger.records import (
    Claimed,
    Confirmation,
    DeliveryRecord,
    EventRecord,
    ForgedReport,
    NewDelivery,
    NoticeRecord,
    OutageRecord,
    Outcome,
    PublicationRecord,
    Report,
    Suppression,
)
from dispatcher.ledger.states import (
    BEGUN_STATES,
    FINAL_STATES,
    NOT_REACHED_STATES,
    REPORTED_STATES,
    UNSENT_STATES,
    Applied,
    DeliveryState,
    NoticeState,
)
from dispatcher.ledger.store import Ledger, Peek, may_exist, peek
from dispatcher.ledger.tables import metadata

__all__ = [
    "BEGUN_STATES",
    "FINAL_STATES",
    "NOT_REACHED_STATES",
    "REPORTED_STATES",
    "UNSENT_STATES",
    "Applied",
    "Claimed",
    "Confirmation",
    "DeliveryRecord",
    "DeliveryState",
    "EventRecord",
    "ForgedReport",
    "Ledger",
    "NewDelivery",
    "NoticeRecord",
    "NoticeState",
    "OutageRecord",
    "Outcome",
    "Peek",
    "PublicationRecord",
    "Report",
    "Suppression",
    "engine_url",
    "is_unavailable",
    "may_exist",
    "metadata",
    "peek",
]
