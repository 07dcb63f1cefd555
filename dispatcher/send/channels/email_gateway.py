"""The ``email-gateway`` fax backend: the fax PDF attached to an e-mail to the gateway.

``gateway_address`` names the fax number as ``{number}`` (E.164 digits, ``81312345678``)
or ``{national}`` (``0312345678``). The mail goes through the e-mail channel's transport.
"""

from __future__ import annotations

from typing import ClassVar

import phonenumbers

from dispatcher.render import build_fax_email
from dispatcher.send.channels.base import Backend, MailTransport, Outgoing, Receipt
from dispatcher.send.channels.envelope import DeliveryTokens


class EmailGatewayFax(Backend):
    name: ClassVar[str] = "email-gateway"

    def __init__(self, gateway_address: str, from_mailbox: str, transport: MailTransport,
                 tokens: DeliveryTokens) -> None:
        self._gateway_address = gateway_address
        self._from = from_mailbox
        self._transport = transport
        self._tokens = tokens

    async def send(self, outgoing: Outgoing) -> Receipt:
        assert outgoing.document is not None, "a fax is sent with its rendered document"
        recipient = gateway_recipient(self._gateway_address, outgoing.message.address)
        mail = build_fax_email(
            outgoing.document.pdf, recipient, outgoing.message.contact.merchant, self._from,
            outgoing.sent_at, self._tokens.message_id(
                outgoing.notice_key, outgoing.message.contact.id,
                outgoing.message.channel.value, self._from))
        return await self._transport.deliver(mail, recipient, outgoing.notice_key,
                                             outgoing.tag)

    async def close(self) -> None:
        """The transport was made for this backend (``make_backends``): it closes with it."""
        await self._transport.close()


def gateway_recipient(template: str, e164: str) -> str:
    number = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(number)
    prefix = "0" if number.country_code == 81 else ""
    return template.format(number=e164.lstrip("+"), national=f"{prefix}{national}")
