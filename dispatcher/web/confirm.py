"""The page a contact's confirmation link opens (``/c/{code}``), outside the console's
login: the code is the proof; and the help desk's 確認を代行 in the console.

A GET shows the notice and a 確認しました button and changes nothing (mail scanners and
link previews open links); the button's POST records the confirmation, and confirming
again is harmless. A code that does not verify is a 404 and a log line; an address that
keeps sending such codes is refused for a while before any is looked at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dispatcher.errors import ArgumentError, InputError, single
from dispatcher.ledger import Confirmation, DeliveryRecord, NoticeRecord
from dispatcher.logs import event
from dispatcher.receipts import confirm_by_hand
from dispatcher.render import CONFIRM_PATH, ConfirmLinks, Message, Renderer
from dispatcher.send import as_moved
from dispatcher.table import (
    Channel,
    Inputs,
    Notice,
    jp_datetime,
    notice_key,
    notice_named,
)
from dispatcher.web.auth import AddressLimiter, Session
from dispatcher.web.gate import STATIC, Gate, html
from dispatcher.web.notices import NoticeDesk

log = logging.getLogger("dispatcher.web")

BAD_CODES_PER_ADDRESS = 20  # in 15 minutes; then that address waits


@dataclass
class ConfirmDesk:
    desk: NoticeDesk
    limiter: AddressLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = AddressLimiter(BAD_CODES_PER_ADDRESS, self.desk.clock)

    def routes(self, gate: Gate) -> list[Route]:
        """The link pages (anyone with a code), and the help desk's 確認を代行 (logged in)."""
        return [Route(f"{CONFIRM_PATH}/confirm.css", self.style),
                Route(f"{CONFIRM_PATH}/{{code}}", self.page, methods=["GET"]),
                Route(f"{CONFIRM_PATH}/{{code}}", self.confirm, methods=["POST"]),
                Route("/windows/{number:int}/notices/{tag}/confirm",
                      gate.action(self.by_hand), methods=["POST"])]

    async def by_hand(self, request: Request, session: Session) -> Response:
        """The help desk confirms for a merchant who phoned (an id or the fax's code)."""
        inputs = await self.desk.inputs()
        number, tag = request.path_params["number"], request.path_params["tag"]
        form = await request.form()
        try:
            notice = await self.desk.notice(inputs, number, tag)
            record = await self.desk.ledger.notice(notice.window.id, notice.slot.name,
                                                   notice.tag)
            if record is None:
                raise single(ArgumentError, "notice", f"{notice.key} has not been sent")
            done = await confirm_by_hand(self.desk.ledger, ConfirmLinks.of(inputs.config),
                                         record, str(form.get("who", "")), session.user,
                                         self.desk.clock())
        except InputError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=400)
        target = f"/windows/{number}/notices/{tag}?contact={quote(done.contact_id)}#unreached"
        return RedirectResponse(target, status_code=303)

    async def style(self, _: Request) -> Response:
        return PlainTextResponse((STATIC / "confirm.css").read_text(encoding="utf-8"),
                                 media_type="text/css")

    async def page(self, request: Request) -> Response:
        """What the link shows; nothing recorded."""
        found = await self._verified(request)
        if isinstance(found, Response):
            return found
        inputs, delivery, record = found
        standing = await self.desk.ledger.confirmations_of(record.id, [delivery.contact_id])
        return await self._page(inputs, delivery, record, standing.get(delivery.contact_id))

    async def confirm(self, request: Request) -> Response:
        found = await self._verified(request)
        if isinstance(found, Response):
            return found
        inputs, delivery, record = found
        entered = Confirmation(record.id, delivery.contact_id, "link", _address(request),
                               self.desk.clock(), delivery.id)
        standing = await self.desk.ledger.confirm(entered)
        event(log, logging.INFO, "confirmed by link", notice=_key(record),
              contact=delivery.contact_id, channel=delivery.channel, delivery=delivery.id,
              first=standing == entered)
        return await self._page(inputs, delivery, record, standing)

    async def _verified(self, request: Request
                        ) -> tuple[Inputs, DeliveryRecord, NoticeRecord] | Response:
        """The delivery the request's code names, or the answer that it names none."""
        address = _address(request)
        if not self.limiter.take(address):  # counted before the code is looked at
            return html("confirm_refused.html.j2", 429)
        try:
            inputs = await self.desk.inputs()
            code = request.path_params["code"]
            links = ConfirmLinks.of(inputs.config)
            delivery_id = links.delivery_of(code, self.desk.clock()) if links else None
            found = (await self.desk.ledger.deliveries_by_id([delivery_id])).get(
                delivery_id) if delivery_id is not None else None
        except BaseException:  # the code was not looked at (the ledger away): no failure
            self.limiter.give_back(address)
            raise
        if found is None:
            event(log, logging.WARNING, "confirmation link refused: the code does not verify",
                  code=code[:40], address=address, delivery=delivery_id)
            return html("confirm_refused.html.j2", 404, helpdesk=inputs.config.helpdesk)
        self.limiter.give_back(address)  # a code that verifies is no failure
        delivery, record = found
        return inputs, delivery, await self.desk.ledger.base_of(record)

    async def _page(self, inputs: Inputs, delivery: DeliveryRecord, record: NoticeRecord,
                    standing: Confirmation | None) -> Response:
        tz = inputs.config.settings.timezone
        notice = notice_named(inputs.config.windows, record.window_id, record.slot,
                              record.phase, await self.desk.ledger.work_reports())
        if notice is not None:  # a postponement: interrupted or not, as it was made
            notice = await as_moved(self.desk.ledger, notice)
        message = _message(inputs, delivery, record, notice)
        return html("confirm.html.j2", helpdesk=inputs.config.helpdesk,
                    sender=inputs.config.sender, message=message,
                    confirmed_at=jp_datetime(standing.at.astimezone(tz)) if standing else None)



def _message(inputs: Inputs, delivery: DeliveryRecord, record: NoticeRecord,
             notice: Notice | None) -> Message | None:
    """The notice as the contact's e-mail tells it (without the link), from the table in
    force; None if the window or the contact has left it."""
    contact = next((c for c in inputs.contacts if c.id == delivery.contact_id), None)
    if contact is None or notice is None:
        return None
    sent_at = delivery.sent_at or record.created_at
    try:
        return Renderer.of(inputs).render(
            notice, contact, Channel.EMAIL, sent_at, with_link=False)
    except InputError:
        return None


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


def _key(record: NoticeRecord) -> str:
    return notice_key(record.window_id, record.slot, record.phase)

