"""Sending a notice: plan its deliveries, claim them with a lease, deliver through the
channels' backends, record the outcomes in the ledger."""

from dispatcher.send.channels import (
    Backend,
    Outgoing,
    Receipt,
    gateway_recipient,
    job_failure,
    make_backends,
)
from dispatcher.send.dispatcher import Dispatcher, Plan
from dispatcher.send.identity import message_id
from dispatcher.send.lanes import Clock, RateLimiter
from dispatcher.send.outcome import outcome_of_error
from dispatcher.send.session import SendResult, preflight, send_notice, send_session

__all__ = [
    "Backend",
    "Clock",
    "Dispatcher",
    "Outgoing",
    "Plan",
    "RateLimiter",
    "Receipt",
    "SendResult",
    "gateway_recipient",
    "job_failure",
    "make_backends",
    "message_id",
    "outcome_of_error",
    "preflight",
    "send_notice",
    "send_session",
]
