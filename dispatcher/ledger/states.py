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


class Cause(StrEnum):
    """Why a notice's state is written: each cause may make only the moves ``LIFECYCLE``
    lists for it."""

    SCHEDULE = "schedule"   # the daemon plans it at its time (or resumes what is released)
    OPERATOR = "operator"   # an operator sends some of its channels by hand, or retries it
    SETTLED = "settled"     # a sending run found nothing of it left to send
    REPORT = "report"       # a provider asked for another attempt of one of its deliveries
    MISSED = "missed"       # its time passed before it (or the rest of it) could go out


_S, _P, _D, _M = (NoticeState.SENDING, NoticeState.PARTIAL, NoticeState.DONE,
                  NoticeState.MISSED)
# (state before, state after) by cause; None before: the notice is created. ``sending``
# means a sender is (or should be) at it now; ``partial`` that what is released is done
# and the rest waits for the notice's time. Only an operator reopens a missed notice; a
# provider's report never does (its delivery stays as it was).
LIFECYCLE: dict[Cause, frozenset[tuple[NoticeState | None, NoticeState]]] = {
    # a second daemon may plan what the first has just finished: it stays as it is, or
    # (its table has contacts the other's had not yet) is reopened for them
    Cause.SCHEDULE: frozenset({(None, _S), (_S, _S), (_P, _S), (_D, _D), (_D, _S), (_M, _M)}),
    Cause.OPERATOR: frozenset({(None, _S), (_S, _S), (_P, _S), (_D, _S), (_D, _D), (_M, _S)}),
    Cause.SETTLED: frozenset({(_S, _D), (_S, _P), (_P, _D), (_P, _P), (_D, _D)}),
    Cause.REPORT: frozenset({(_S, _S), (_P, _S), (_D, _S)}),
    Cause.MISSED: frozenset({(None, _M), (_P, _M)}),
}


class LifecycleError(RuntimeError):
    """A write of a notice's state that ``LIFECYCLE`` forbids: a bug, never bad input."""


def allowed_from(cause: Cause, to: NoticeState) -> list[NoticeState]:
    """The states a notice may be in for ``cause`` to move it to ``to``."""
    return [before for before, after in LIFECYCLE[cause] if after is to and before]


def check_move(cause: Cause, before: NoticeState | None, after: NoticeState) -> None:
    """LifecycleError unless ``cause`` may move a notice from ``before`` to ``after``."""
    if (before, after) not in LIFECYCLE[cause]:
        raise LifecycleError(f"a notice may not go from {before or 'nothing'} to {after} "
                             f"by {cause}")


def opened_state(before: NoticeState | None, cause: Cause, added: int) -> NoticeState:
    """The state of a notice just planned by a sender: ``sending``, the sender being at it
    (what of it is not released waits at the claim; once the released channels are done
    it settles ``partial``). A done notice is reopened only for new deliveries
    (``added``), a missed one only by an operator."""
    target = NoticeState.SENDING
    if before is NoticeState.DONE and not added:
        target = NoticeState.DONE
    elif before is NoticeState.MISSED and cause is not Cause.OPERATOR:
        target = NoticeState.MISSED
    check_move(cause, before, target)
    return target


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
