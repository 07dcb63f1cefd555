"""The operator's console: the table and the audit log, behind a login. Server-rendered
(Jinja2, autoescaped), no JavaScript; every state-changing request carries the session's
CSRF token."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from dispatcher.clock import Clock
from dispatcher.errors import InputError, StaleError
from dispatcher.ledger import Ledger
from dispatcher.table import (
    Config,
    Inputs,
    Phase,
    Window,
    active_slot,
    find_window,
    jp_datetime,
    jp_range,
    next_notice,
    notice_key,
    notice_tags,
    phase_tag,
)
from dispatcher.web.auth import LoginLimiter, Session, Sessions, Users, secret_key
from dispatcher.web.notices import NoticeDesk

COOKIE = "dispatcher_session"
LOGIN_COOKIE = "dispatcher_login"
Handler = Callable[[Request, Session], Awaitable[Response]]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("dispatcher.web", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_TEMPLATES.filters["jp_datetime"] = jp_datetime
_STATIC = Path(__file__).parent / "static"
_FILES = {"console.css": "text/css", "progress.js": "text/javascript"}


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
    desk: NoticeDesk | None = None
    table_in_force: Callable[[], Inputs] | None = None  # the daemon's, if it keeps one

    def __post_init__(self) -> None:
        if self.desk is None:
            self.desk = NoticeDesk(self.config_path, self.ledger, self.clock,
                                   table_in_force=self.table_in_force)

    @classmethod
    def of(cls, config: Config, ledger: Ledger, clock: Clock, secure_cookies: bool,
           table_in_force: Callable[[], Inputs] | None = None) -> Console:
        settings = config.console
        assert settings is not None
        return cls(config.path, ledger, clock, Users(settings.users_file),
                   Sessions(secret_key(settings.secret_file),
                            timedelta(hours=settings.session_hours)),
                   LoginLimiter(settings.login_attempts, clock), secure_cookies,
                   table_in_force=table_in_force)

    async def close(self, timeout: float) -> None:
        """End the event streams and stop the background sends (see NoticeDesk.close)."""
        await self._desk.close(timeout)

    def routes(self) -> list[Route]:
        notice = "/windows/{number:int}/notices/{tag}"
        return [
            Route("/", self._page(self.table)),
            Route("/audit", self._page(self.audit)),
            Route(notice, self._page(self.notice_page)),
            Route(f"{notice}/fax.png", self._page(self.fax_image)),
            Route(f"{notice}/unreached.csv", self._page(self.unreached_file)),
            Route(f"{notice}/progress", self._page(self.progress)),
            Route(f"{notice}/send", self._action(self.send), methods=["POST"]),
            Route(f"{notice}/retry", self._action(self.retry), methods=["POST"]),
            Route("/windows/{number:int}/postpone", self._action(self.postpone),
                  methods=["POST"]),
            Route("/logout", self._action(self.logout), methods=["POST"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/static/{name}", self.static),
        ]

    # -- the login ------------------------------------------------------------------

    async def login_form(self, request: Request, error: str = "", status: int = 200
                         ) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        response = _html("login.html.j2", status, user=None, error=error, csrf=token,
                         next=_local(request.query_params.get("next", "/")))
        self._cookie(response, LOGIN_COOKIE, token, max_age=3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("user", "")), str(form.get("password", ""))
        expected = request.cookies.get(LOGIN_COOKIE)
        if not expected or not secrets.compare_digest(expected, str(form.get("csrf", ""))):
            return PlainTextResponse("the login form has expired: reload it\n", status_code=403)
        address = request.client.host if request.client else "?"
        if self.limiter.blocked(address):
            return await self.login_form(
                request, "ログインの失敗が続いたため、しばらくお待ちください（15 分）。", 429)
        await asyncio.sleep(self.limiter.delay(name))
        user = await asyncio.to_thread(self.users.verify, name, password)  # argon2: slow
        if user is None:
            self.limiter.failed(name, address)
            return await self.login_form(request, "ユーザー名またはパスワードが違います。", 401)
        self.limiter.succeeded(name)
        await self.ledger.audit(name, "login", "", {"address": address}, self.clock())
        cookie, _ = self.sessions.issue(name, user.version)
        response = RedirectResponse(_local(str(form.get("next", "/"))), status_code=303)
        self._cookie(response, COOKIE, cookie)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        """Ends every session of this user, not only this browser's."""
        await asyncio.to_thread(self.users.end_sessions, session.user)
        await self.ledger.audit(session.user, "logout", "", {}, self.clock())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES:
            return PlainTextResponse("not found\n", status_code=404)
        return PlainTextResponse((_STATIC / name).read_text(encoding="utf-8"),
                                 media_type=_FILES[name])

    # -- the pages ------------------------------------------------------------------

    async def table(self, request: Request, session: Session) -> Response:
        config = (await self._desk.inputs()).config
        now = self.clock()
        active = await self.ledger.active_slots()
        states = await self.ledger.notice_states()
        rows = [_window_row(w, active, states, now, config) for w in config.windows]
        return _html("table.html.j2", user=session.user, csrf=session.csrf, rows=rows,
                     now=jp_datetime(now.astimezone(config.settings.timezone)))

    async def audit(self, request: Request, session: Session) -> Response:
        config = (await self._desk.inputs()).config
        tz = config.settings.timezone
        entries = [{**e, "at": jp_datetime(e["at"].astimezone(tz))}
                   for e in reversed(await self.ledger.audit_entries())]
        return _html("audit.html.j2", user=session.user, csrf=session.csrf, entries=entries)

    async def notice_page(self, request: Request, session: Session, error: str = "",
                          status: int = 200) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        notice = await desk.notice(inputs, request.path_params["number"],
                                   request.path_params["tag"])
        view = await desk.view(inputs, notice, request.query_params.get("contact"))
        return _html("notice.html.j2", status, user=session.user, csrf=session.csrf,
                     error=error, **view)

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
        return StreamingResponse(desk.progress_events(notice), media_type="text/event-stream")

    async def send(self, request: Request, session: Session) -> Response:
        return await self._notice_action(request, session, "send")

    async def retry(self, request: Request, session: Session) -> Response:
        return await self._notice_action(request, session, "retry")

    async def postpone(self, request: Request, session: Session) -> Response:
        desk = self._desk
        inputs = await desk.inputs()
        window = find_window(inputs.config.windows, str(request.path_params["number"]))
        form = await request.form()
        back = str(form.get("back", "/"))
        if str(form.get("confirm", "")).strip() != window.id:
            return PlainTextResponse(f"type the window's id ({window.id}) to confirm\n",
                                     status_code=400)
        try:
            await desk.postpone(inputs, window, session.user, str(form.get("reason", "")),
                                _seen_slot(form))
        except StaleError as exc:
            return PlainTextResponse(f"not postponed: {exc}\n", status_code=409)
        except InputError as exc:
            return PlainTextResponse(f"not postponed: {exc}\n", status_code=400)
        return RedirectResponse(_local(back), status_code=303)

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
        assert self.desk is not None
        return self.desk

    # -- who may ---------------------------------------------------------------------

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page: without a valid session, to the login page."""
        async def page(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/login?next={target}", status_code=302)
            try:
                return await handler(request, session)
            except InputError as exc:  # no such window or notice, or a broken config
                return PlainTextResponse(f"{exc}\n", status_code=400)
        return page

    def _action(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A state-changing request: 401 without a session, 403 without its CSRF token."""
        async def action(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return PlainTextResponse("log in first\n", status_code=401)
            form = await request.form()
            if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
                return PlainTextResponse("missing or wrong CSRF token\n", status_code=403)
            return await handler(request, session)
        return action

    def _session(self, request: Request) -> Session | None:
        """The request's session, if its cookie verifies and its user still has the
        session version it was issued with."""
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None or self.users.version(session.user) != session.version:
            return None
        return session

    def _cookie(self, response: Response, name: str, value: str,
                max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                            secure=self.secure_cookies, path="/")


# On every response: nothing but this server's own files, no framing, no sniffing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _window_row(window: Window, active: dict[str, str], states: dict[str, Any],
                now: datetime, config: Config) -> dict[str, Any]:
    tz = config.settings.timezone
    slot = active_slot(window, active)
    coming = next_notice(window, slot, now)
    tags = notice_tags(window)
    return {
        "window": window, "slot": slot,
        "time": jp_range(slot.start.astimezone(tz), slot.end.astimezone(tz)),
        "reserves": [jp_range(s.start.astimezone(tz), s.end.astimezone(tz))
                     for s in window.reserves],
        "next": (f"{phase_tag(coming.phase, coming.lead)} "
                 f"{jp_datetime(coming.at.astimezone(tz))}") if coming else "-",
        "notices": [(tag, states[key].value) for tag in tags
                    if (key := notice_key(window.id, slot.name, tag)) in states],
        "tags": [t for t in tags if t != Phase.POSTPONED.value],
    }


def _html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_TEMPLATES.get_template(name).render(**context), status_code=status)


def _seen_slot(form: Any, name: str = "from") -> str | None:
    """The slot the page showed, which the action must still find active; None from a page
    that did not say (then the action applies to the active slot)."""
    value = str(form.get(name, "")).strip()
    return value or None


def _local(target: str) -> str:
    """Only a path on this server: never a redirect elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def _with_bom(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """UTF-8 with a byte-order mark first: what Excel in Japan needs to read it as UTF-8."""
    yield "\ufeff".encode()
    async for line in lines:
        yield line.encode("utf-8")
