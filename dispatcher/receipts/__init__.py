"""What comes back after a provider took a message: bounces and success DSNs, a fax
gateway's result mails, and (coming) Twilio's status reports, as ledger reports."""

from dispatcher.receipts.bounces import MailKind, MailReading, RecipientResult, read_bounce
from dispatcher.receipts.files import mails_in
from dispatcher.receipts.mail import MailMatcher, MailResult, read_mails, report_of
from dispatcher.receipts.reach import Unreached, is_reached, unreached

__all__ = [
    "MailKind",
    "MailMatcher",
    "MailReading",
    "MailResult",
    "RecipientResult",
    "Unreached",
    "is_reached",
    "mails_in",
    "read_bounce",
    "read_mails",
    "report_of",
    "unreached",
]
