"""What comes back after a provider took a message: bounces and success DSNs, a fax
gateway's result mails, Twilio's status reports (callbacks and polling), as ledger reports;
and who a notice reached."""

from dispatcher.receipts.bounces import MailKind, MailReading, RecipientResult, read_bounce
from dispatcher.receipts.calls import CallReports, call_report
from dispatcher.receipts.confirmations import HandConfirmation, confirm_by_hand
from dispatcher.receipts.figures import ChannelFigures, channel_figures, moment_at
from dispatcher.receipts.files import mails_in
from dispatcher.receipts.imap import ImapAccount, ImapError, ImapIntake
from dispatcher.receipts.mail import MailMatcher, MailResult, read_mails, report_of
from dispatcher.receipts.proof import ReachReads
from dispatcher.receipts.reach import (
    Unreached,
    gone_from,
    is_reached,
    not_reached,
    unreached,
    unreached_csv,
    unreached_csv_lines,
)
from dispatcher.receipts.replies import INBOUND_PATH, SmsReplies, reply_word
from dispatcher.receipts.twilio import TwilioPoller, TwilioReports, sms_report

__all__ = [
    "INBOUND_PATH",
    "CallReports",
    "ChannelFigures",
    "HandConfirmation",
    "ImapAccount",
    "ImapError",
    "ImapIntake",
    "MailKind",
    "MailMatcher",
    "MailReading",
    "MailResult",
    "ReachReads",
    "RecipientResult",
    "SmsReplies",
    "TwilioPoller",
    "TwilioReports",
    "Unreached",
    "call_report",
    "channel_figures",
    "confirm_by_hand",
    "gone_from",
    "is_reached",
    "mails_in",
    "moment_at",
    "not_reached",
    "read_bounce",
    "read_mails",
    "reply_word",
    "report_of",
    "sms_report",
    "unreached",
    "unreached_csv",
    "unreached_csv_lines",
]
