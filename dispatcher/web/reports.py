"""The operator's reports of the work from the console: 作業完了 (done), 延長 (extend),
経過報告 (update) and 作業中断 with no date yet (interrupt). Each form carries what the
operator saw (the slot, the end in force, the number of updates) and the window's id typed
again; a stale one is refused (409, a page in Japanese with the way back), never applied to
something else, exactly as `dispatcher done|extend|update|postpone --no-move` would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dispatcher.clock import Clock
from dispatcher.errors import ArgumentError, InputError, Problem, StaleError, single
from dispatcher.ledger import Ledger
from dispatcher.publish import PROGRESS_LABELS, PublishedState
from dispatcher.render import Encoding, Renderer
from dispatcher.send import (
    WorkAction,
    WorkView,
    plan_done,
    plan_extension,
    plan_interruption,
    plan_update,
    work_view,
)
from dispatcher.table import (
    Channel,
    Config,
    Inputs,
    Phase,
    Window,
    Work,
    find_window,
    jp_datetime,
    notice_in_work,
)
from dispatcher.web.audience import Audience
from dispatcher.web.auth import Session
from dispatcher.web.gate import Gate, html, local
from dispatcher.web.notices import NoticeDesk

Form = Any  # starlette's FormData: str values by name, getlist for checkboxes
Plan = Callable[[Inputs, WorkView, Form, str], WorkAction]
PageContext = Callable[[Session, Config], Awaitable[dict[str, Any]]]  # every page's parts
ACTIONS = {"done": "作業完了の報告", "extend": "延長", "update": "経過報告",
           "interrupt": "作業中断"}


@dataclass
class ReportDesk:
    """The report actions, and what the notice page shows of the work."""

    desk: NoticeDesk
    ledger: Ledger
    clock: Clock
    page_context: PageContext

    def routes(self, gate: Gate) -> list[Route]:
        window = "/windows/{number:int}"
        return [Route(f"{window}/{name}", gate.action(handler), methods=["POST"])
                for name, handler in (("done", self.done), ("extend", self.extend),
                                      ("update", self.update),
                                      ("interrupt", self.interrupt))]

    async def context(self, inputs: Inputs, window: Window) -> dict[str, Any]:
        """The work as the notice page shows it, and what its forms carry back."""
        view = await work_view(self.ledger, window)
        tz = inputs.config.settings.timezone
        work = view.work
        room = await asyncio.to_thread(update_sms_room, inputs, self.desk.audience(
            inputs, window), window, work, self.clock()) if work.done is None else None
        return {"sms_room": room, "work": {
            "label": PROGRESS_LABELS[PublishedState(work.state(self.clock()).value)],
            "end": jp_datetime(work.end.astimezone(tz)),
            "seen_end": work.end.isoformat(), "updates": len(work.updates),
            "slot": view.slot.name, "open": work.done is None,
        }}

    async def done(self, request: Request, session: Session) -> Response:
        def plan(inputs: Inputs, view: WorkView, form: Form, actor: str) -> WorkAction:
            ended = _moment(form, "at", inputs.config.settings.timezone)
            return plan_done(inputs, view, ended, actor, self.clock)
        return await self._report(request, session, plan, "done")

    async def interrupt(self, request: Request, session: Session) -> Response:
        def plan(inputs: Inputs, view: WorkView, form: Form, actor: str) -> WorkAction:
            return plan_interruption(inputs, view, str(form.get("reason", "")), actor,
                                     self.clock)
        return await self._report(request, session, plan, "interrupt")

    async def extend(self, request: Request, session: Session) -> Response:
        def plan(inputs: Inputs, view: WorkView, form: Form, actor: str) -> WorkAction:
            tz = inputs.config.settings.timezone
            until = _moment(form, "until", tz)
            if until is None:
                raise single(ArgumentError, "until", "give the new end (延長後の終了予定)")
            return plan_extension(inputs, view, until, str(form.get("reason", "")), actor,
                                  self.clock, _moment(form, "seen_end", tz))
        return await self._report(request, session, plan, "extend")

    async def update(self, request: Request, session: Session) -> Response:
        def plan(inputs: Inputs, view: WorkView, form: Form, actor: str) -> WorkAction:
            seen = str(form.get("seen_updates", "")).strip()
            names = {c.value for c in Channel}
            only = [Channel(c) for c in form.getlist("channel") if c in names] or None
            return plan_update(inputs, view, str(form.get("text", "")), only, actor,
                               self.clock, int(seen) if seen.isdigit() else None)
        return await self._report(request, session, plan, "update")

    async def _report(self, request: Request, session: Session, plan: Plan, name: str
                      ) -> Response:
        inputs = await self.desk.inputs()
        form = await request.form()
        back = local(str(form.get("back", "/")))

        async def refused(explanation: str, detail: str, status: int) -> Response:
            return html("refused.html.j2", status,
                        **await self.page_context(session, inputs.config),
                        action=ACTIONS[name], explanation=explanation, detail=detail,
                        back=back)

        try:
            window = find_window(inputs.config.windows, str(request.path_params["number"]))
        except InputError as exc:
            return await refused("その作業は表にありません。", str(exc), 404)
        if str(form.get("confirm", "")).strip() != window.id:
            return await refused(f"確認のため、作業 ID（{window.id}）を入力してください。",
                                 "作業 ID が入力されていないか、違います。", 400)
        try:
            view = await work_view(self.ledger, window)
            seen = str(form.get("slot", "")).strip()
            if seen and seen != view.slot.name:
                raise StaleError([Problem("WINDOW", f"window {window.number} is on "
                                          f"{view.slot.name} now, not {seen}: look again")])
            # every message rendered first, off the loop the daemon's notices share
            action = await asyncio.to_thread(plan, inputs, view, form, session.user)
            await self.desk.report(inputs, action)
        except StaleError as exc:
            return await refused("画面を表示した後に、作業の状態が変わりました（ほかの操作者の"
                                 "報告・延期など）。何も記録していません。", str(exc), 409)
        except InputError as exc:
            return await refused("記録できませんでした。何も変更していません。", str(exc), 400)
        return RedirectResponse(back, status_code=303)


def _moment(form: Form, name: str, tz: tzinfo) -> datetime | None:
    """A time from a form (``2021-07-19T02:30`` from a time picker is in ``tz``)."""
    value = str(form.get(name, "")).strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise single(ArgumentError, name, f"{value!r} is not a date and time") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def update_sms_room(inputs: Inputs, audience: Audience, window: Window, work: Work,
                    now: datetime) -> dict[str, Any] | None:
    """What the 経過報告 box's live count needs: the units (UTF-16, or GSM-7 septets) the
    update SMS takes before its text, for the audience's longest merchant name, and the
    segments allowed. None if the window sends no SMS (or its template does not render:
    `check` names why, and the box shows no count)."""
    contact = audience.longest_sms_contact
    if Channel.SMS not in window.channels or contact is None:
        return None
    config = inputs.config
    notice = notice_in_work(window, work, Phase.UPDATE, None, now, "x", None)
    try:
        message = Renderer.of(inputs).render(
            notice, contact, Channel.SMS, now)
    except InputError:
        return None
    if message.segments is None:
        return None
    return {"units": message.segments.units - 1,  # the placeholder "x" is one unit
            "gsm7": message.segments.encoding is Encoding.GSM7,
            "max": config.messages.sms_max_segments}
