"""The states of a notice and of a delivery. No SQLAlchemy here: other layers read these."""

from __future__ import annotations

from enum import StrEnum


class NoticeState(StrEnum):
    """A notice is ``done`` exactly when every delivery of every one of its channels is
    final, across its whole audience as planned now."""

    SENDING = "sending"  # a sender is at it (or died at it: the daemon resumes it at once)
    PARTIAL = "partial"  # some channels were sent by hand; the rest go at the notice's time
    DONE = "done"
    MISSED = "missed"    # its time passed before it (or the rest of it) could go out


# A notice that went, or is going, out: of the start notice, the work has begun
BEGUN_STATES = (NoticeState.SENDING, NoticeState.PARTIAL, NoticeState.DONE)


class DeliveryState(StrEnum):
    PENDING = "pending"        # waiting for its first or next attempt
    SENDING = "sending"        # claimed by a worker under a lease
    SENT = "sent"              # accepted by the provider
    SUBMITTED = "submitted"    # fax: accepted by the fax server, not yet transmitted
    DELIVERED = "delivered"    # the provider reports it arrived (fax sent, SMS handset, DSN)
    UNDELIVERED = "undelivered"  # SMS or fax gateway: the carrier refused it or gave up
    BOUNCED = "bounced"        # e-mail: a hard bounce (5.x.x)
    FAILED = "failed"          # permanent error, or out of attempts
    UNCERTAIN = "uncertain"    # the provider may have processed it; not retried blindly
    EXPIRED = "expired"        # its notice stopped mattering before it could be sent


FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.FAILED,
                          DeliveryState.UNCERTAIN, DeliveryState.EXPIRED,
                          DeliveryState.UNDELIVERED, DeliveryState.BOUNCED})
# Final, and the contact did not get (or may not have got) the message: reported, retryable.
UNSENT_STATES = (DeliveryState.FAILED, DeliveryState.UNCERTAIN, DeliveryState.EXPIRED)
# What only a provider's report sets; once set, no later report or attempt changes it.
REPORTED_STATES = (DeliveryState.DELIVERED, DeliveryState.UNDELIVERED, DeliveryState.BOUNCED)
# A report can still move these: the provider took (or may have taken) the message.
REPORTABLE_STATES = (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.SUBMITTED,
                     DeliveryState.UNCERTAIN)
# The contact did not get the message on this channel: `status` lists each.
NOT_REACHED_STATES = (*UNSENT_STATES, DeliveryState.UNDELIVERED, DeliveryState.BOUNCED)


class Applied(StrEnum):
    """What the ledger did with one provider report."""

    MOVED = "moved"          # recorded, and the delivery's state changed
    RECORDED = "recorded"    # recorded; the state stays (a delay, or already final)
    DUPLICATE = "duplicate"  # this very report was recorded before
    EARLY = "early"          # the attempt is not recorded yet: not stored, polled later
    UNKNOWN = "unknown"      # no such delivery in this ledger


def reported_move(current: DeliveryState, wanted: DeliveryState | None
                  ) -> DeliveryState | None:
    """The state a report moves a delivery in ``current`` to, or None. States only move
    forward: a late, repeated or out-of-order report cannot undo a final report."""
    if wanted is None:
        return None
    if wanted is DeliveryState.PENDING:  # a new message: only once the last one is recorded
        return wanted if current in (DeliveryState.SENT, DeliveryState.UNCERTAIN) else None
    if wanted in REPORTED_STATES and current in REPORTABLE_STATES:
        return wanted
    return None
