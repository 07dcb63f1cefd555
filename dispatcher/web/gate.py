"""Who may use the console: the login form and its limits, the session every page needs,
the CSRF token every state-changing request carries, and the headers on every response."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from dispatcher.clock import Clock
from dispatcher.errors import InputError
from dispatcher.ledger import Ledger
from dispatcher.table import jp_datetime
from dispatcher.web.auth import LoginLimiter, Session, Sessions, Users
from dispatcher.web.progress import CHANNEL_LABELS, STATE_LABELS

COOKIE = "dispatcher_session"
LOGIN_COOKIE = "dispatcher_login"
Handler = Callable[[Request, Session], Awaitable[Response]]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("dispatcher.web", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_TEMPLATES.filters["jp_datetime"] = jp_datetime
_TEMPLATES.filters["state_label"] = lambda state: STATE_LABELS.get(str(state), str(state))
_TEMPLATES.filters["channel_label"] = lambda channel: CHANNEL_LABELS.get(str(channel),
                                                                          str(channel))
STATIC = Path(__file__).parent / "static"

# On every response: nothing but this server's own files, no framing, no sniffing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Gate:
    ledger: Ledger
    clock: Clock
    users: Users
    sessions: Sessions
    limiter: LoginLimiter
    secure_cookies: bool

    async def login_form(self, request: Request, error: str = "", status: int = 200
                         ) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        response = html("login.html.j2", status, user=None, error=error, csrf=token,
                        next=local(request.query_params.get("next", "/")))
        self._cookie(response, LOGIN_COOKIE, token, max_age=3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("user", "")), str(form.get("password", ""))
        expected = request.cookies.get(LOGIN_COOKIE)
        if not expected or not secrets.compare_digest(expected, str(form.get("csrf", ""))):
            return PlainTextResponse("the login form has expired: reload it\n", status_code=403)
        address = request.client.host if request.client else "?"
        if not self.limiter.take(address):  # counted now: concurrent guesses count too
            return await self.login_form(
                request, "ログインの失敗が続いたため、しばらくお待ちください（15 分）。", 429)
        try:
            with self.limiter.turn(name) as delay:  # as if the logins under way had failed
                await asyncio.sleep(delay)
                user = await asyncio.to_thread(self.users.verify, name, password)  # argon2
        except BaseException:  # not checked (a shutdown, an error): no failure counted
            self.limiter.give_back(address)
            raise
        if user is None:
            self.limiter.failed_user(name)
            return await self.login_form(request, "ユーザー名またはパスワードが違います。", 401)
        self.limiter.succeeded(name, address)
        await self.ledger.audit(name, "login", "", {"address": address}, self.clock())
        cookie, _ = self.sessions.issue(name, user.version)
        response = RedirectResponse(local(str(form.get("next", "/"))), status_code=303)
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

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
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

    def action(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
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

    def alive(self, session: Session) -> bool:
        """Whether ``session`` still holds: its user is there with the version it was
        issued with (a logout, a new password or a removal ends it), under the key in
        force (deleting the key file ends every session)."""
        return (self.users.version(session.user) == session.version
                and session.key == self.sessions.key_mark)

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


def html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_TEMPLATES.get_template(name).render(**context), status_code=status)


def local(target: str) -> str:
    """Only a path on this server: never a redirect elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
