"""The states of a notice and of a delivery. No SQLAlchemy here: other layers read these."""

from __future__ import annotations

from enum import StrEnum


class NoticeState(StrEnum):
    SENDING = "sending"
    DONE = "done"
    MISSED = "missed"


class DeliveryState(StrEnum):
    PENDING = "pending"        # waiting for its first or next attempt
    SENDING = "sending"        # claimed by a worker under a lease
    SENT = "sent"              # accepted by the provider
    SUBMITTED = "submitted"    # fax: accepted by the fax server, not yet transmitted
    DELIVERED = "delivered"    # fax: transmitted
    FAILED = "failed"          # permanent error, or out of attempts
    UNCERTAIN = "uncertain"    # the provider may have processed it; not retried blindly
    EXPIRED = "expired"        # its notice stopped mattering before it could be sent


FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.FAILED,
                          DeliveryState.UNCERTAIN, DeliveryState.EXPIRED})
# Final, and the contact did not get (or may not have got) the message: reported, retryable.
UNSENT_STATES = (DeliveryState.FAILED, DeliveryState.UNCERTAIN, DeliveryState.EXPIRED)
