"""Who a notice reached, and who the help desk should phone. Pure: the deliveries, the
audience and ``now`` are passed in.

A contact is reached when one of its deliveries is ``delivered``, or ``sent`` with no
failure reported for ``grace`` after it was sent. Every other contact of the audience is
unreached, including one with no delivery at all (no address on the notice's channels).
Of a notice that asks to confirm, only a confirmation proves it: every contact who has not
confirmed is listed, with whether a delivery reached them and what its escalations did.
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
    reached: bool = False  # a delivery reached them (listed: the notice asks to confirm)
    # the escalations' deliveries to them (start+sms, start+voice: the call-out), in order
    steps: tuple[tuple[str, DeliveryRecord], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "contact": self.contact_id, "merchant": self.merchant, "name": self.name,
            "phones": list(self.phones), "waiting": self.waiting,
            "channels": {d.channel: _outcome(d) for d in self.deliveries},
            "confirmed": False, "reached": self.reached,
            "steps": [{"notice": tag, "channel": d.channel, **_outcome(d)}
                      for tag, d in self.steps],
        }


def _outcome(delivery: DeliveryRecord) -> dict[str, Any]:
    return {"state": delivery.state, "address": delivery.address,
            "error_code": delivery.error_code, "reason": delivery.last_error}


def is_waiting(delivery: DeliveryRecord, grace: timedelta, now: datetime) -> bool:
    """Sent within the grace period, no report yet: the message may still arrive."""
    return (delivery.state == DeliveryState.SENT.value
            and not is_reached(delivery, grace, now))


def is_reached(delivery: DeliveryRecord, grace: timedelta, now: datetime) -> bool:
    if delivery.state == DeliveryState.DELIVERED.value:
        return True
    return (delivery.state == DeliveryState.SENT.value and delivery.sent_at is not None
            and delivery.sent_at + grace <= now)


def unreached(audience: Sequence[Contact], deliveries: Iterable[DeliveryRecord],
              grace: timedelta, now: datetime,
              steps: Iterable[tuple[str, DeliveryRecord]] = (),
              confirmed: Container[str] | None = None) -> list[Unreached]:
    """The contacts of ``audience`` (and any other contact a delivery names) that no
    delivery reached, in the audience's order; of a notice that asks to confirm (the
    ``confirmed`` contacts given), those who have not confirmed."""
    by_contact: dict[str, list[DeliveryRecord]] = {}
    for delivery in deliveries:
        by_contact.setdefault(delivery.contact_id, []).append(delivery)
    steps_of: dict[str, list[tuple[str, DeliveryRecord]]] = {}
    for tag, delivery in steps:
        steps_of.setdefault(delivery.contact_id, []).append((tag, delivery))
    known = {c.id: c for c in audience}
    order = [c.id for c in audience] + [i for i in by_contact if i not in known]
    found = []
    for contact_id in order:
        mine = by_contact.get(contact_id, [])
        reached = any(is_reached(d, grace, now) for d in mine)
        if (reached and confirmed is None) or (confirmed is not None
                                                and contact_id in confirmed):
            continue
        contact = known.get(contact_id)
        waiting = any(is_waiting(d, grace, now) for d in mine)
        found.append(Unreached(
            contact_id, contact.merchant if contact else "", contact.name if contact else "",
            _phones(contact), tuple(sorted(mine, key=lambda d: d.channel)), waiting, reached,
            tuple(steps_of.get(contact_id, ()))))
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
    """Numbers to call: the phone, the mobile (SMS) number, then the fax line."""
    if contact is None:
        return ()
    return tuple(dict.fromkeys(n for n in (contact.phone, contact.sms, contact.fax) if n))


_CSV_CHANNELS = ("fax", "email", "sms", "voice")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what Excel reads as a formula (OWASP)


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it, never runs it: one that starts like a formula
    (``=HYPERLINK(…)`` in a merchant's name) gets a leading ``'`` (OWASP's CSV injection
    rule). A phone number ``+81…`` is then text, which it is."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


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
        writer.writerow([spreadsheet_safe(cell) for cell in row])
        return buffer.getvalue()

    if header:
        yield line(["contact", "merchant", "name", "phones", "waiting",
                    *(f"{c} {what}" for c in _CSV_CHANNELS for what in ("state", "reason")),
                    "confirmed", "reached", "steps"])
    for contact in contacts:
        channels = contact["channels"]
        row = [contact["contact"], contact["merchant"], contact["name"],
               " ".join(contact["phones"]), "yes" if contact["waiting"] else ""]
        for channel in _CSV_CHANNELS:
            outcome = channels.get(channel, {})
            row += [outcome.get("state", "no address"), outcome.get("reason") or ""]
        row += ["yes" if contact["confirmed"] else "no", "yes" if contact["reached"] else "no",
                "; ".join(_step_text(step) for step in contact["steps"])]
        yield line(row)


def _step_text(step: dict[str, Any]) -> str:
    """``start+voice: undelivered (busy)``: what an escalation did."""
    reason = f" ({step['reason']})" if step.get("reason") else ""
    return f"{step['notice']}: {step['state']}{reason}"
