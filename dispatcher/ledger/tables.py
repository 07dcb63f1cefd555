"""The ledger's tables: notices, deliveries, the providers' reports on them, provider
outages, slot moves, the operators' reports of the work and the alerts sent to them, the
contacts' confirmations, the suppressed addresses, what was published about each window,
and the audit log of operator actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (portable to SQLite), read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores only aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = MetaData()

notices = Table(
    "notices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_id", String(200), nullable=False),
    Column("slot", String(50), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("triggered_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("sending_since", UTCDateTime),  # added later: NULL in older ledgers
    UniqueConstraint("window_id", "slot", "phase", name="uq_notice"),
)

# When each channel of a notice may go (its release time): at once for a channel an
# operator sent by hand, at the notice's own time for the others; NULL until then. The
# claim hands out no delivery before its channel's release, whatever the notice's state.
notice_releases = Table(
    "notice_releases", metadata,
    Column("notice_id", Integer, ForeignKey("notices.id"), primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("release_at", UTCDateTime),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", Integer, ForeignKey("notices.id"), nullable=False),
    Column("contact_id", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("address", String(320), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UTCDateTime),
    Column("lease_epoch", Integer),  # added later: one more on every claim; NULL until then
    Column("error_code", String(50)),
    Column("last_error", Text),
    Column("provider_ref", String(200)),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("notice_id", "contact_id", "channel", name="uq_delivery"),
    Index("ix_deliveries_due", "notice_id", "channel", "state", "next_attempt_at"),
    Index("ix_deliveries_lease", "notice_id", "channel", "state", "lease_expires_at"),
)

outages = Table(
    "outages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", Integer, ForeignKey("notices.id"), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("began_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("waiting", Integer, nullable=False),
    Column("probes", Integer, nullable=False),
    Column("error", Text, nullable=False),
)

# One row per provider report (a Twilio status, a bounce, a gateway's result mail), never
# edited; the digest makes the same report, read twice, one row.
delivery_events = Table(
    "delivery_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("source", String(50), nullable=False),
    Column("status", String(50), nullable=False),
    Column("code", String(50)),
    Column("detail", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("digest", name="uq_delivery_event"),
    Index("ix_delivery_events_delivery", "delivery_id"),
)

# Reports whose token did not verify (a forged bounce, a made-up callback URL): kept for
# the record, linked to no delivery, moving nothing.
forged_reports = Table(
    "forged_reports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(50), nullable=False),
    Column("claimed", Text, nullable=False),  # the token, envelope id or URL it came with
    Column("detail", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("digest", name="uq_forged_report"),
)

slot_changes = Table(
    "slot_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_id", String(200), nullable=False),
    Column("from_slot", String(50), nullable=False),
    Column("to_slot", String(50), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    # a window leaves a slot at most once (moves only go forward): two postponements made
    # on the same view cannot both be recorded
    Index("uq_slot_changes_from", "window_id", "from_slot", unique=True),
)

work_reports = Table(
    "work_reports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_id", String(200), nullable=False),
    Column("slot", String(50), nullable=False),
    Column("kind", String(20), nullable=False),  # extended, done, update
    Column("number", Integer, nullable=False),   # 1, 2, … per kind
    Column("at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime),                # extended: the new end; done: the end
    Column("text", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("channels", String(100), nullable=False, default=""),  # update: "sms,email"
    # two reports made on the same view (the same number) cannot both be recorded
    UniqueConstraint("window_id", "slot", "kind", "number", name="uq_work_report"),
)

# The operators' alerts ([alerts]): each address once per alert (an overrun: the notice's
# key), claimed before it is sent; a sender that dies holding one leaves it unsent.
operator_alerts = Table(
    "operator_alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert", String(400), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("address", String(320), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("error", Text),  # why it could not be sent; None once sent
    UniqueConstraint("alert", "channel", "address", name="uq_operator_alert"),
)

# A notice the daemon could not start or send (a template it cannot render, a login a
# provider refused, a ledger error): since when, how many tries in a row, the last reason
# and what to do; removed when the daemon's send of it goes through. `status`, `windows`,
# the console and /metrics show those of notices not done.
notice_failures = Table(
    "notice_failures", metadata,
    Column("window_id", String(200), primary_key=True),
    Column("slot", String(50), primary_key=True),
    Column("phase", String(20), primary_key=True),
    Column("since", UTCDateTime, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("fix", Text, nullable=False),
)

# A contact saying they read a notice: the first confirmation of (notice, contact) is the
# one kept (confirming again changes nothing); ``via`` is link, voice or helpdesk.
confirmations = Table(
    "confirmations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", Integer, ForeignKey("notices.id"), nullable=False),
    Column("contact_id", String(200), nullable=False),
    Column("delivery_id", Integer, ForeignKey("deliveries.id")),  # the link's or call's
    Column("via", String(20), nullable=False),
    Column("actor", String(200), nullable=False),  # the help desk user, or the address
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("notice_id", "contact_id", name="uq_confirmation"),
)

# Addresses not to be used again (a dead mailbox, an SMS number that replied STOP): one
# row per (channel, address), with why and since when.
suppressions = Table(
    "suppressions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(20), nullable=False),
    Column("address", String(320), nullable=False),
    Column("reason", String(200), nullable=False),  # "bounce userunknown 5.1.1", "STOP"
    Column("detail", Text, nullable=False),
    Column("source", String(200), nullable=False),  # the mail, the reply, who entered it
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "address", name="uq_suppression"),
)

# The contacts rows the table in force set aside as invalid (left out of every audience),
# as the daemon last read them: for `status` and the console without reading 100,000 rows.
set_aside_rows = Table(
    "set_aside_rows", metadata,
    Column("source", String(1000), primary_key=True),  # file:line
    Column("contact_id", String(200), nullable=False),
    Column("merchant", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("tags", Text, nullable=False),  # space-separated, as in the file
    Column("typed", Text, nullable=False),  # JSON: the address columns as typed
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

publications = Table(
    "publications", metadata,
    Column("window_id", String(200), primary_key=True),
    Column("sequence", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("content", Text, nullable=False),  # JSON: what the page, calendar and feed show
    Column("updated_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("window_id", String(200), nullable=False),
    Column("detail", Text, nullable=False),
)
