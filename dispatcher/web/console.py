"""The operator's console: the table, the night board, the notices and the audit log,
behind a login. Server-rendered (Jinja2, autoescaped); scripts of its own only for what
moves live. Every state-changing request carries the session's CSRF token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from dispatcher.clock import Clock
from dispatcher.errors import InputError, StaleError
from dispatcher.ledger import Ledger
from dispatcher.publish import PROGRESS_LABELS, PublishedState
from dispatcher.schedule import next_notice
from dispatcher.table import (
    Config,
    Phase,
    TableKeeper,
    Window,
    WorkReports,
    active_slot,
    find_window,
    jp_datetime,
    jp_range,
    notice_key,
    notice_tags,
    phase_tag,
    work_of,
)
from dispatcher.web.auth import LoginLimiter, Session, Sessions, Users
from dispatcher.web.banners import banners
from dispatcher.web.gate import STATIC, Gate, html, local
from dispatcher.web.night import NightBoard
from dispatcher.web.notices import NoticeDesk
from dispatcher.web.reports import ReportDesk

_FILES = {"console.css": "text/css", "progress.js": "text/javascript",
          "night.js": "text/javascript", "sms-count.js": "text/javascript"}


@dataclass
class Console:
    """What the console's pages need: the table (in the daemon, the daemon's table in force;
    alone, the files, read again after an edit), the ledger, the clock and the console's
    own security."""

    config_path: Path
    ledger: Ledger
    clock: Clock
    users: Users
    sessions: Sessions
    limiter: LoginLimiter
    secure_cookies: bool
    # the daemon's table in force, which it reads again after an edit; None: the console
    # keeps its own (alone, `dispatcher console`)
    daemon_table: TableKeeper | None = None

    def __post_init__(self) -> None:
        self.gate = Gate(self.ledger, self.clock, self.users, self.sessions, self.limiter,
                         self.secure_cookies)
        self.desk = NoticeDesk(self.config_path, self.ledger, self.clock,
                               daemon_table=self.daemon_table)
        self.reports = ReportDesk(self.desk, self.ledger, self.clock, self._page_context)
        self.board = NightBoard(self.desk, self.ledger, self.clock, self.gate.alive)

    @classmethod
    def of(cls, config: Config, ledger: Ledger, clock: Clock, secure_cookies: bool,
           daemon_table: TableKeeper | None = None) -> Console:
        settings = config.console
        assert settings is not None
        return cls(config.path, ledger, clock, Users(settings.users_file),
                   Sessions(settings.secret_file,
                            timedelta(hours=settings.session_hours)),
                   LoginLimiter(settings.login_attempts, clock), secure_cookies,
                   daemon_table=daemon_table)

    async def close(self, timeout: float) -> None:
        """End the event streams and stop the background sends (see NoticeDesk.close)."""
        await self._desk.close(timeout)

    def routes(self) -> list[Route]:
        notice = "/windows/{number:int}/notices/{tag}"
        return [
            Route("/", self.gate.page(self.table)),
            Route("/audit", self.gate.page(self.audit)),
            Route("/night", self.gate.page(self.night)),
            Route("/night/events", self.gate.page(self.board.events)),
            Route(notice, self.gate.page(self.notice_page)),
            Route(f"{notice}/fax.png", self.gate.page(self.fax_image)),
            Route(f"{notice}/unreached.csv", self.gate.page(self.unreached_file)),
            Route(f"{notice}/progress", self.gate.page(self.progress)),
            Route(f"{notice}/send", self.gate.action(self.send), methods=["POST"]),
            Route(f"{notice}/retry", self.gate.action(self.retry), methods=["POST"]),
            Route("/windows/{number:int}/postpone", self.gate.action(self.postpone),
                  methods=["POST"]),
            *self.reports.routes(self.gate),
            Route("/logout", self.gate.action(self.gate.logout), methods=["POST"]),
            Route("/login", self.gate.login_form, methods=["GET"]),
            Route("/login", self.gate.login, methods=["POST"]),
            Route("/static/{name}", self.static),
        ]

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES:
            return PlainTextResponse("not found\n", status_code=404)
        return PlainTextResponse((STATIC / name).read_text(encoding="utf-8"),
                                 media_type=_FILES[name])

    # -- the pages ------------------------------------------------------------------

    async def table(self, request: Request, session: Session) -> Response:
        config = (await self._desk.inputs()).config
        now = self.clock()
        active = await self.ledger.active_slots()
        states = await self.ledger.notice_states()
        reports = await self.ledger.work_reports()
        rows = [_window_row(w, active, states, reports, now, config) for w in config.windows]
        return html("table.html.j2", **await self._page_context(session, config), rows=rows,
                     now=jp_datetime(now.astimezone(config.settings.timezone)))

    async def audit(self, request: Request, session: Session) -> Response:
        config = (await self._desk.inputs()).config
        tz = config.settings.timezone
        entries = [{**e, "at": jp_datetime(e["at"].astimezone(tz))}
                   for e in reversed(await self.ledger.audit_entries())]
        return html("audit.html.j2", **await self._page_context(session, config),
                    entries=entries)

    async def night(self, request: Request, session: Session) -> Response:
        config = (await self._desk.inputs()).config
        return await self.board.page(await self._page_context(session, config))

    async def notice_page(self, request: Request, session: Session, error: str = "",
                          status: int = 200) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        notice = await desk.notice(inputs, request.path_params["number"],
                                   request.path_params["tag"])
        view = await desk.view(inputs, notice, request.query_params.get("contact"))
        return html("notice.html.j2", status,
                    **await self._page_context(session, inputs.config), error=error,
                    **view, **await self.reports.context(inputs, notice.window))

    async def fax_image(self, request: Request, session: Session) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        notice = await desk.notice(inputs, request.path_params["number"],
                                   request.path_params["tag"])
        png = await asyncio.to_thread(desk.fax_png, inputs, notice,
                                      request.query_params.get("contact", ""))
        return Response(png, media_type="image/png")

    async def unreached_file(self, request: Request, session: Session) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        notice = await desk.notice(inputs, request.path_params["number"],
                                   request.path_params["tag"])
        name = f"unreached-{notice.window.id}-{notice.tag}.csv"
        return StreamingResponse(_with_bom(desk.unreached_lines(inputs, notice)),
                                 media_type="text/csv",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{name}"'})

    async def progress(self, request: Request, session: Session) -> Response:
        desk = self._desk
        notice = await desk.notice(await desk.inputs(), request.path_params["number"],
                                   request.path_params["tag"])
        return StreamingResponse(desk.progress_events(notice, lambda: self.gate.alive(session)),
                                 media_type="text/event-stream")

    async def send(self, request: Request, session: Session) -> Response:
        return await self._notice_action(request, session, "send")

    async def retry(self, request: Request, session: Session) -> Response:
        return await self._notice_action(request, session, "retry")

    async def postpone(self, request: Request, session: Session) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        form = await request.form()
        back = local(str(form.get("back", "/")))

        async def refused(explanation: str, detail: str, status: int) -> Response:
            return html("refused.html.j2", status,
                        **await self._page_context(session, inputs.config), action="延期",
                        explanation=explanation, detail=detail, back=back)

        try:
            window = find_window(inputs.config.windows, str(request.path_params["number"]))
        except InputError as exc:
            return await refused("その作業は表にありません。", str(exc), 404)
        if str(form.get("confirm", "")).strip() != window.id:
            return await refused(f"確認のため、作業 ID（{window.id}）を入力してください。",
                                 "作業 ID が入力されていないか、違います。", 400)
        try:
            await desk.postpone(inputs, window, session.user, str(form.get("reason", "")),
                                _seen_slot(form))
        except StaleError as exc:
            return await refused("画面を表示した後に、作業の状態が変わりました（ほかの操作者の"
                                 "延期・報告など）。何も変更していません。", str(exc), 409)
        except InputError as exc:
            return await refused("延期できませんでした。何も変更していません。", str(exc), 400)
        return RedirectResponse(back, status_code=303)

    async def _notice_action(self, request: Request, session: Session, action: str
                             ) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        notice = await desk.notice(inputs, request.path_params["number"],
                                   request.path_params["tag"])
        form = await request.form()
        if str(form.get("confirm", "")).strip() != notice.window.id:
            ask = f"確認のため、作業 ID（{notice.window.id}）を入力してください。"
            return await self.notice_page(request, session, ask, 400)
        seen = _seen_slot(form, "slot")
        if seen is not None and seen != notice.slot.name:
            stale = (f"作業 {notice.window.number} は {notice.slot.name} に移動しました"
                     f"（表示時は {seen}）。画面を確認してから操作してください。")
            return await self.notice_page(request, session, stale, 409)
        try:
            if action == "send":
                await desk.start_send(inputs, notice, session.user)
            else:
                await desk.start_retry(inputs, notice, session.user)
        except StaleError as exc:
            return await self.notice_page(request, session, str(exc), 409)
        except InputError as exc:
            return await self.notice_page(request, session, str(exc), 400)
        return RedirectResponse(request.url.path.rsplit("/", 1)[0], status_code=303)

    @property
    def _desk(self) -> NoticeDesk:
        return self.desk

    async def _page_context(self, session: Session, config: Config) -> dict[str, Any]:
        """What every page shows: who is logged in, the CSRF token, why the last edit of
        the table was not taken in (the pages show the last good table meanwhile), the
        works that overran an end in force without `done`, the notices the daemon could not
        send and the operators' alerts that did not go."""
        return {"user": session.user, "csrf": session.csrf,
                "rejected": [str(problem) for problem in self._desk.rejected],
                **await banners(config, self.ledger, self.clock())}


def _window_row(window: Window, active: dict[str, str], states: dict[str, Any],
                reports: WorkReports, now: datetime, config: Config) -> dict[str, Any]:
    tz = config.settings.timezone
    slot = active_slot(window, active)
    work = work_of(window, slot, reports)
    coming = next_notice(window, slot, now, work,
                         timedelta(minutes=config.settings.overrun_after_minutes), states)
    tags = notice_tags(window, work)
    return {
        "window": window, "slot": slot,
        "work": PROGRESS_LABELS[PublishedState(work.state(now).value)],
        "time": jp_range(slot.start.astimezone(tz), work.end.astimezone(tz)),
        "reserves": [jp_range(s.start.astimezone(tz), s.end.astimezone(tz))
                     for s in window.reserves],
        "next": (f"{phase_tag(coming.phase, coming.lead)} "
                 f"{jp_datetime(coming.at.astimezone(tz))}") if coming else "-",
        "notices": [(tag, states[key].value) for tag in tags
                    if (key := notice_key(window.id, slot.name, tag)) in states],
        "tags": [t for t in tags if t != Phase.POSTPONED.value],
    }


def _seen_slot(form: Any, name: str = "from") -> str | None:
    """The slot the page showed, which the action must still find active; None from a page
    that did not say (then the action applies to the active slot)."""
    value = str(form.get(name, "")).strip()
    return value or None


async def _with_bom(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """UTF-8 with a byte-order mark first: what Excel in Japan needs to read it as UTF-8."""
    yield "\ufeff".encode()
    async for line in lines:
        yield line.encode("utf-8")
