"""What a merchant texts back (Twilio's inbound-message webhook, signed with the account's
auth token): STOP or 停止 puts the number on the suppression list for SMS, START or 再開
takes it off again. Any other reply changes nothing (it is logged for the help desk)."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from dispatcher.clock import Clock
from dispatcher.ledger import Ledger, Suppression
from dispatcher.logs import event
from dispatcher.table import Channel

log = logging.getLogger("dispatcher.receipts")

INBOUND_PATH = "/twilio/inbound"  # set as the number's "A message comes in" webhook
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                        "停止", "配信停止", "ストップ", "中止"})
START_WORDS = frozenset({"START", "UNSTOP", "再開", "配信再開"})


def reply_word(body: str) -> str:
    """The reply as one word: full-width letters folded, case and spaces dropped."""
    return "".join(unicodedata.normalize("NFKC", body).split()).upper().strip("。.!！")


@dataclass
class SmsReplies:
    ledger: Ledger
    auth_token: str
    clock: Clock

    async def inbound(self, url: str, params: Mapping[str, str], signature: str
                      ) -> str | None:
        """The TwiML answer to an inbound SMS (none sent back: Twilio answers STOP itself);
        None if Twilio did not sign it."""
        if not RequestValidator(self.auth_token).validate(url, dict(params), signature):
            event(log, logging.WARNING, "inbound sms with a bad signature refused", url=url)
            return None
        number, body = params.get("From", ""), params.get("Body", "")
        word = reply_word(body)
        if word in STOP_WORDS:
            added = await self.ledger.suppress([Suppression(
                Channel.SMS.value, number, "STOP reply", body[:200],
                f"sms {params.get('MessageSid', '')}", self.clock())])
            event(log, logging.WARNING, "sms number suppressed: it replied STOP",
                  number=number, new=bool(added))
        elif word in START_WORDS:
            if await self.ledger.unsuppress(Channel.SMS.value, number):
                await self.ledger.audit(f"sms {number}", "unsuppress", "",
                                        {"channel": "sms", "address": number,
                                         "reply": body[:200]}, self.clock())
                event(log, logging.INFO, "sms number taken off the suppression list: it "
                      "replied START", number=number)
        else:
            event(log, logging.INFO, "sms reply", number=number, body=body[:200])
        return str(MessagingResponse().to_xml())
