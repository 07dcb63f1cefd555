"""Who a notice reached, and who the help desk should phone. Pure: the deliveries, the
audience and ``now`` are passed in.

A contact is reached when one of its deliveries is ``delivered``, or ``sent`` with no
failure reported for ``grace`` after it was sent. Every other contact of the audience is
unreached, including one with no delivery at all (no address on the notice's channels).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dispatcher.ledger import DeliveryRecord, DeliveryState
from dispatcher.table import Contact


@dataclass(frozen=True)
class Unreached:
    """A contact no channel reached: what happened on each channel, and whom to phone."""

    contact_id: str
    merchant: str
    name: str
    phones: tuple[str, ...]
    deliveries: tuple[DeliveryRecord, ...]
    waiting: bool  # a message was sent within the grace period: it may still arrive

    def to_json(self) -> dict[str, Any]:
        return {
            "contact": self.contact_id, "merchant": self.merchant, "name": self.name,
            "phones": list(self.phones), "waiting": self.waiting,
            "channels": {d.channel: {"state": d.state, "address": d.address,
                                     "error_code": d.error_code, "reason": d.last_error}
                         for d in self.deliveries},
        }


def is_reached(delivery: DeliveryRecord, grace: timedelta, now: datetime) -> bool:
    if delivery.state == DeliveryState.DELIVERED.value:
        return True
    return (delivery.state == DeliveryState.SENT.value and delivery.sent_at is not None
            and delivery.sent_at + grace <= now)


def unreached(audience: Sequence[Contact], deliveries: Iterable[DeliveryRecord],
              grace: timedelta, now: datetime) -> list[Unreached]:
    """The contacts of ``audience`` (and any other contact a delivery names) that no
    delivery reached, in the audience's order."""
    by_contact: dict[str, list[DeliveryRecord]] = {}
    for delivery in deliveries:
        by_contact.setdefault(delivery.contact_id, []).append(delivery)
    known = {c.id: c for c in audience}
    order = [c.id for c in audience] + [i for i in by_contact if i not in known]
    found = []
    for contact_id in order:
        mine = by_contact.get(contact_id, [])
        if any(is_reached(d, grace, now) for d in mine):
            continue
        contact = known.get(contact_id)
        waiting = any(d.state == DeliveryState.SENT.value for d in mine)
        found.append(Unreached(
            contact_id, contact.merchant if contact else "", contact.name if contact else "",
            _phones(contact), tuple(sorted(mine, key=lambda d: d.channel)), waiting))
    return found


def gone_from(audience: Container[str], named: Iterable[str]) -> list[str]:
    """The contacts with a delivery (``named``) who are no longer in the audience: the
    table was edited since the notice went out."""
    return [contact for contact in named if contact not in audience]


def not_reached(audience: Iterable[str], gone: Iterable[str], reached: Container[str]
                ) -> list[str]:
    """The notice's contacts no delivery reached: the audience's in its order, then those
    gone from it since."""
    return [contact for contact in itertools.chain(audience, gone) if contact not in reached]


def _phones(contact: Contact | None) -> tuple[str, ...]:
    """Numbers to call: the mobile (SMS) number first, then the fax line."""
    if contact is None:
        return ()
    return tuple(dict.fromkeys(n for n in (contact.sms, contact.fax) if n))


_CSV_CHANNELS = ("fax", "email", "sms")


def unreached_csv(contacts: Iterable[dict[str, Any]]) -> str:
    """The unreached contacts (as ``Unreached.to_json``) as CSV: a row each, with the
    numbers to phone and what happened on each channel."""
    return "".join(unreached_csv_lines(contacts))


def unreached_csv_lines(contacts: Iterable[dict[str, Any]], header: bool = True
                        ) -> Iterator[str]:
    """``unreached_csv`` a line at a time (the console streams it), with the header
    line first unless ``header`` is false."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row: list[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    if header:
        yield line(["contact", "merchant", "name", "phones", "waiting",
                    *(f"{c} {what}" for c in _CSV_CHANNELS for what in ("state", "reason"))])
    for contact in contacts:
        channels = contact["channels"]
        row = [contact["contact"], contact["merchant"], contact["name"],
               " ".join(contact["phones"]), "yes" if contact["waiting"] else ""]
        for channel in _CSV_CHANNELS:
            outcome = channels.get(channel, {})
            row += [outcome.get("state", "no address"), outcome.get("reason") or ""]
        yield line(row)
