"""What the operator declares, and nothing else: the window table, its notices, the
contacts, and the config they come from. Pure apart from reading those files."""


from dispatcher.table.config import (
    BACKENDS,
    ChannelConfig,
    Config,
    ConsoleSettings,
    Publish,
    load_config,
    parse_config,
)
from dispatcher.table.contacts import (
    Contact,
    find_contact,
    in_audience,
    load_contacts,
    parse_contacts_file,
)
from dispatcher.table.inputs import Inputs, load_inputs
from dispatcher.table.leads import jp_lead, lead_text, parse_lead
from dispatcher.table.notice import Notice, build_notice, notice_key, phase_tag
from dispatcher.table.receipts import (
    EmailReceipts,
    FaxGatewayReceipts,
    Http,
    Receipts,
    SmsReceipts,
)
from dispatcher.table.retry import PROBE_CEILING_SECONDS, Deadline, RetryPolicy
from dispatcher.table.timefmt import (
    jp_clock,
    jp_date,
    jp_datetime,
    jp_month_day,
    jp_range,
    jp_short_range,
    spoken_duration,
)
from dispatcher.table.windows import (
    PLANNED,
    Channel,
    NextNotice,
    Notify,
    Phase,
    Slot,
    Window,
    active_slot,
    find_window,
    following_slot,
    next_notice,
    notice_times,
    postponement_target,
    reserve_name,
)

__all__ = [
    "BACKENDS",
    "PLANNED",
    "PROBE_CEILING_SECONDS",
    "Channel",
    "ChannelConfig",
    "Config",
    "ConsoleSettings",
    "Contact",
    "Deadline",
    "EmailReceipts",
    "FaxGatewayReceipts",
    "Http",
    "Inputs",
    "NextNotice",
    "Notice",
    "Notify",
    "Phase",
    "Publish",
    "Receipts",
    "RetryPolicy",
    "Slot",
    "SmsReceipts",
    "Window",
    "active_slot",
    "build_notice",
    "find_contact",
    "find_window",
    "following_slot",
    "in_audience",
    "jp_clock",
    "jp_date",
    "jp_datetime",
    "jp_lead",
    "jp_month_day",
    "jp_range",
    "jp_short_range",
    "lead_text",
    "load_config",
    "load_contacts",
    "load_inputs",
    "next_notice",
    "notice_key",
    "notice_times",
    "parse_config",
    "parse_contacts_file",
    "parse_lead",
    "phase_tag",
    "postponement_target",
    "reserve_name",
    "spoken_duration",
]
