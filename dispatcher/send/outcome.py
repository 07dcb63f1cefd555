"""What a failed attempt means for its delivery: try again later, uncertain, or failed.
Pure: the clock's reading and the random draw are passed in."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatcher.errors import (
    ChannelError,
    PermanentError,
    RefusedError,
    UnavailableError,
    UncertainError,
)
from dispatcher.ledger import Claimed, DeliveryState, Outcome
from dispatcher.table import RetryPolicy


def outcome_of_error(item: Claimed, exc: ChannelError, policy: RetryPolicy, now: datetime,
                     draw: float) -> Outcome:
    """The outcome of ``item``'s attempt that raised ``exc``; ``draw`` is uniform in [0, 1).

    When the provider did not answer, or refused the sender itself, the attempt does not
    count and the delivery is due again at once: the channel's probes (or the operator's
    fix), not the delivery's backoff, decide when it goes.
    """
    if isinstance(exc, UnavailableError | RefusedError):
        return Outcome(item.id, DeliveryState.PENDING, next_attempt_at=now, error_code=exc.code,
                       last_error=str(exc), counted=False)
    retryable = not isinstance(exc, PermanentError) and (
        not isinstance(exc, UncertainError) or policy.retry_uncertain)
    if retryable and policy.may_retry(item.attempts):
        wait = policy.delay(item.attempts, draw)
        return Outcome(item.id, DeliveryState.PENDING,
                       next_attempt_at=now + timedelta(seconds=wait),
                       error_code=exc.code, last_error=str(exc))
    if isinstance(exc, UncertainError) and not policy.retry_uncertain:
        return Outcome(item.id, DeliveryState.UNCERTAIN, error_code=exc.code,
                       last_error=str(exc))
    reason = str(exc) if not retryable else f"gave up after {item.attempts} attempts: {exc}"
    return Outcome(item.id, DeliveryState.FAILED, error_code=exc.code, last_error=reason)
