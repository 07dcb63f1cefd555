"""Confirmations entered by the help desk for a merchant who phoned: named by the
contact's id, or by the code printed on their fax (``3K7F-2M9Q-X1``). Each is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatcher.errors import ArgumentError, single
from dispatcher.ledger import Confirmation, Ledger, NoticeRecord
from dispatcher.render import ConfirmLinks
from dispatcher.table import notice_key

HELPDESK = "helpdesk"


@dataclass(frozen=True)
class HandConfirmation:
    notice_key: str
    contact_id: str
    standing: Confirmation  # the confirmation that stands: this one, or an earlier one
    new: bool  # False: the contact had confirmed before (nothing changed)


async def confirm_by_hand(ledger: Ledger, links: ConfirmLinks | None, record: NoticeRecord,
                          who: str, actor: str, now: datetime) -> HandConfirmation:
    """Record that the contact ``who`` names (an id, or a code of one of this notice's
    deliveries) confirmed the notice; ArgumentError naming CONTACT if it names none."""
    contact_id = await _contact_named(ledger, links, record, who.strip(), now)
    entered = Confirmation(record.id, contact_id, HELPDESK, actor, now)
    standing = await ledger.confirm(entered)
    key = notice_key(record.window_id, record.slot, record.phase)
    new = standing == entered
    if new:
        await ledger.audit(actor, "confirm", record.window_id,
                           {"notice": key, "contact": contact_id, "named_by": who}, now)
    return HandConfirmation(key, contact_id, standing, new)


async def _contact_named(ledger: Ledger, links: ConfirmLinks | None, record: NoticeRecord,
                         who: str, now: datetime) -> str:
    if await ledger.deliveries_of_contacts(record.id, [who]):
        return who
    delivery_id = links.delivery_of(who, now) if links is not None else None
    if delivery_id is not None:
        found = (await ledger.deliveries_by_id([delivery_id])).get(delivery_id)
        if found is not None and (await ledger.base_of(found[1])).id == record.id:
            return found[0].contact_id  # a code of the notice, or of one of its escalations
    key = notice_key(record.window_id, record.slot, record.phase)
    raise single(ArgumentError, "CONTACT", f"{who!r} is neither a contact that {key} was "
                 "sent to nor the code printed on one of its pages")
