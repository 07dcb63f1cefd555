"""What is due when: decisions from the table, the ledger and ``now`` (pure), and the
APScheduler jobs that carry them out."""


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
    "Capacity",
    "Decision",
    "NoticeJobs",
    "capacities",
    "decide",
    "next_notice",
    "notice_capacity",
    "per_second",
    "recipients_of",
    "timeline",
    "was_interrupted",
]
