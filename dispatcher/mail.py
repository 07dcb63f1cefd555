"""A rendered e-mail Message → the MIME message a contact receives.

Every header value is folded to one line first, so no contact field (a merchant name
with a line break, say) can add or break a header.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from dispatcher.render import Message, one_line


def recipient_name(message: Message) -> str:
    contact = message.contact
    return one_line(f"{contact.merchant} {contact.name}".strip())


def build_email(message: Message, from_mailbox: str, sent_at: datetime,
                message_id: str | None = None) -> EmailMessage:
    """The MIME e-mail for ``message``; ``from_mailbox`` is ``Name <user@host>``."""
    mail = EmailMessage()
    from_name, from_address = parseaddr(from_mailbox)
    mail["From"] = Address(one_line(from_name), addr_spec=from_address)
    mail["To"] = Address(recipient_name(message), addr_spec=message.address)
    mail["Subject"] = one_line(message.subject or "")
    mail["Date"] = format_datetime(sent_at)
    if message_id:
        mail["Message-ID"] = message_id
    mail.set_content(message.body, charset="utf-8", cte="base64")
    return mail


def readable_headers(mail: EmailMessage) -> list[str]:
    """The headers as a person reads them (decoded), in order."""
    return [f"{name}: {value}" for name, value in mail.items()
            if name not in ("Content-Type", "Content-Transfer-Encoding", "MIME-Version")]
