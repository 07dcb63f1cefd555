"""Sending a notice: plan its deliveries, claim them with a lease, deliver through the
channels' backends, record the outcomes in the ledger."""

from dispatcher.send.alerts import Alert, overrun_alert, send_alert
from dispatcher.send.channels import (
    STATUS_PATH,
    Backend,
    Backends,
    DeliveryTokens,
    MessageStatus,
    Outgoing,
    Receipt,
    TwilioSms,
    Verified,
    check_credentials,
    gateway_recipient,
    make_backends,
    tag_id,
)
from dispatcher.send.identity import delivery_tag
from dispatcher.send.lanes import RateLimiter
from dispatcher.send.operator import (
    Postponement,
    carry_out_postponement,
    current_notice,
    plan_postponement,
    requeue_failed,
    retry_failed,
    send_now,
)
from dispatcher.send.outcome import outcome_of_error
from dispatcher.send.run import Plan, SendingRun
from dispatcher.send.session import SendResult, preflight, send_notice, send_session
from dispatcher.send.work import (
    WorkAction,
    WorkView,
    carry_out_report,
    plan_done,
    plan_extension,
    plan_update,
    work_view,
)

__all__ = [
    "STATUS_PATH",
    "Alert",
    "Backend",
    "Backends",
    "DeliveryTokens",
    "MessageStatus",
    "Outgoing",
    "Plan",
    "Postponement",
    "RateLimiter",
    "Receipt",
    "SendResult",
    "SendingRun",
    "TwilioSms",
    "Verified",
    "WorkAction",
    "WorkView",
    "carry_out_postponement",
    "carry_out_report",
    "check_credentials",
    "current_notice",
    "delivery_tag",
    "gateway_recipient",
    "make_backends",
    "outcome_of_error",
    "overrun_alert",
    "plan_done",
    "plan_extension",
    "plan_postponement",
    "plan_update",
    "preflight",
    "requeue_failed",
    "retry_failed",
    "send_alert",
    "send_notice",
    "send_now",
    "send_session",
    "tag_id",
    "work_view",
]
