"""What is due when: decisions from the table, the ledger and ``now`` (pure), and the
APScheduler jobs that carry them out."""


from dispatcher.schedule.ahead import Ahead, Finding, at_night, gone_by, notices_ahead, when
from dispatcher.schedule.capacity import (
    Capacity,
    capacities,
    notice_capacity,
    per_second,
    recipients_of,
)
from dispatcher.schedule.decide import (
    Action,
    Decision,
    decide,
    next_notice,
    timeline,
    was_interrupted,
)
from dispatcher.schedule.jobs import NoticeJobs

__all__ = [
    "Action",
    "Ahead",
    "Capacity",
    "Decision",
    "Finding",
    "NoticeJobs",
    "at_night",
    "capacities",
    "decide",
    "gone_by",
    "next_notice",
    "notice_capacity",
    "notices_ahead",
    "per_second",
    "recipients_of",
    "timeline",
    "was_interrupted",
    "when",
]
