"""The operator's console over real HTTP (`dispatcher console` on 127.0.0.1): the login,
the pages, and what it refuses (no session, no CSRF token, a forged or expired cookie,
too many wrong passwords, markup in the table)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from dispatcher.demo import free_port
from dispatcher.table import load_config
from dispatcher.web import Console, Users
from tests.helpers import ROOT, wait_for

PASSWORD = "correct horse battery"
PAGES = ["/", "/audit"]
ACTIONS = ["/logout"]
PUBLIC = ["/login", "/static/console.css", "/healthz"]


class Browser:
    """Just enough of a browser: cookies kept by name, redirects not followed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookie = rest.split(";")[0].strip('"')
                if cookie and "max-age=0" not in value.lower():
                    self.cookies[key] = cookie
                else:
                    self.cookies.pop(key, None)
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def login(self, user: str = "desk", password: str = PASSWORD) -> int:
        _, _, page = self.request("GET", "/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf, page
        status, _, _ = self.request("POST", "/login", {"user": user, "password": password,
                                                      "csrf": csrf.group(1), "next": "/"})
        return status


@contextlib.contextmanager
def console_server(project: Path) -> Iterator[int]:
    port = free_port()
    with project.open("a", encoding="utf-8") as config:
        config.write(f'\n[http]\nlisten = "127.0.0.1:{port}"\n')
    Users(project.parent / "var" / "console-users").add("desk", PASSWORD)
    log = project.parent / "console.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "console", "-c", str(project)],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "console: http://" in log.read_text(encoding="utf-8")
                 or process.poll() is not None, 120, "the console to listen")
        assert process.poll() is None, log.read_text(encoding="utf-8")
        yield port
    finally:
        process.terminate()
        process.wait()


@pytest.fixture
def console(project: Path) -> Iterator[Browser]:
    with console_server(project) as port:
        yield Browser(port)


def test_every_page_and_action_needs_a_login(console: Browser, project: Path) -> None:
    routes = Console(project, cast(Any, None), time.time, cast(Any, None), cast(Any, None),
                     cast(Any, None), False).routes()
    assert {route.path for route in routes} == {*PAGES, *ACTIONS, *PUBLIC} - {"/healthz"}
    for path in PAGES:
        status, headers, _ = console.request("GET", path)
        assert (status, headers["location"]) == (302, f"/login?next={path}"), path
    for path in ACTIONS:
        assert console.request("POST", path, {"csrf": "x"})[0] == 401, path
    for path in PUBLIC:
        status, headers, _ = console.request("GET", path)
        assert status == 200 and "default-src 'none'" in headers["content-security-policy"]


def test_a_login_shows_the_table_and_the_audit_log(console: Browser) -> None:
    assert console.login() == 303
    status, headers, page = console.request("GET", "/")
    assert status == 200
    assert "2021年7月19日(月) AM1:00～AM2:00" in page and "同報（fax, email, sms）" in page
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    status, _, audit = console.request("GET", "/audit")
    assert status == 200 and "まだ操作はありません" in audit


def test_the_session_cookie_is_http_only_and_strict(console: Browser) -> None:
    _, _, page = console.request("GET", "/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=60)
    connection.request("POST", "/login", body=urlencode(
        {"user": "desk", "password": PASSWORD, "csrf": csrf.group(1)}), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in console.cookies.items())})
    cookies = [v for k, v in connection.getresponse().getheaders() if k.lower() == "set-cookie"]
    session = next(c for c in cookies if c.startswith("dispatcher_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session


def test_a_post_without_its_csrf_token_is_refused(console: Browser) -> None:
    assert console.login() == 303
    assert console.request("POST", "/logout", {})[0] == 403
    assert console.request("POST", "/logout", {"csrf": "guessed"})[0] == 403
    assert console.request("GET", "/")[0] == 200  # still logged in


def test_a_forged_or_expired_cookie_is_refused(console: Browser, project: Path) -> None:
    console.cookies["dispatcher_session"] = "eyJ1IjoiZGVzayIsImMiOiJ4In0.forged.signature"
    assert console.request("GET", "/")[0] == 302
    key = bytes.fromhex((project.parent / "var" / "console-secret").read_text().strip())

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 13 * 3600  # sessions last 12 hours

    expired = URLSafeTimedSerializer(key, salt="dispatcher-console-session", signer=LongAgo)
    console.cookies["dispatcher_session"] = expired.dumps({"u": "desk", "c": "x"})
    assert console.request("GET", "/")[0] == 302
    fresh = URLSafeTimedSerializer(key, salt="dispatcher-console-session")
    console.cookies["dispatcher_session"] = fresh.dumps({"u": "desk", "c": "x"})
    assert console.request("GET", "/")[0] == 200  # the same key, in time: accepted


def test_wrong_passwords_are_limited_per_user(console: Browser) -> None:
    codes = [console.login(password="wrong password") for _ in range(10)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 5
    assert console.login() == 429  # even the right one, until the window has passed


def test_markup_in_the_table_shows_as_text(project: Path) -> None:
    text = project.read_text(encoding="utf-8").replace(
        'title = "J-Mups センター 電子マネー メンテナンス (3)"',
        'title = "<script>alert(1)</script>"')
    project.write_text(text, encoding="utf-8")
    assert load_config(project).windows[2].title == "<script>alert(1)</script>"
    with console_server(project) as port:
        browser = Browser(port)
        assert browser.login() == 303
        _, _, page = browser.request("GET", "/")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_user_add_asks_twice_and_stores_only_a_hash(project: Path) -> None:
    def add(answers: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dispatcher", "user", "add", "night-desk", "-c", str(project)],
            input=answers, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)

    mismatch = add("first password\nsecond password\nfirst password\nfirst password\n")
    assert mismatch.returncode == 0, mismatch.stderr
    assert "do not match" in mismatch.stdout + mismatch.stderr
    users = project.parent / "var" / "console-users"
    stored = users.read_text(encoding="utf-8")
    assert stored.startswith("night-desk:$argon2id$") and "first password" not in stored
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    assert Users(users).verify("night-desk", "first password")
    assert not Users(users).verify("night-desk", "second password")
