"""The operator's console over real HTTP (`dispatcher console` on 127.0.0.1): the login,
the pages, and what it refuses (no session, no CSRF token, a forged or expired cookie,
too many wrong passwords, markup in the table)."""

from __future__ import annotations

import asyncio
import html
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from csv import reader as csv_rows
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from prometheus_client import generate_latest

from dispatcher.render import readable
from dispatcher.table import Channel, Report, WorkReport, load_config, load_inputs
from dispatcher.web import Console, Metrics, Users
from tests.helpers import (
    CONSOLE_PASSWORD,
    ROOT,
    TOKYO,
    WINDOW_3,
    Cli,
    HttpClient,
    configure,
    console_server,
    planned_notice,
    project_ledger,
    real_channels,
    serving,
    timed_window,
    use_contacts,
    wait_for,
)

NOTICE = "/windows/{number:int}/notices/{tag}"
PAGES = {"/": "/", "/audit": "/audit", "/night": "/night", "/night/events": "/night/events",
         NOTICE: "/windows/3/notices/start",
         f"{NOTICE}/fax.png": "/windows/3/notices/start/fax.png",
         f"{NOTICE}/unreached.csv": "/windows/3/notices/start/unreached.csv",
         f"{NOTICE}/progress": "/windows/3/notices/start/progress"}
ACTIONS = {"/logout": "/logout", f"{NOTICE}/send": "/windows/3/notices/start/send",
           "/windows/{number:int}/done": "/windows/3/done",
           "/windows/{number:int}/extend": "/windows/3/extend",
           "/windows/{number:int}/update": "/windows/3/update",
           "/windows/{number:int}/interrupt": "/windows/3/interrupt",
           f"{NOTICE}/retry": "/windows/3/notices/start/retry",
           "/windows/{number:int}/postpone": "/windows/3/postpone"}
PUBLIC = {"/login": "/login", "/static/{name}": "/static/console.css",
          "/healthz": "/healthz"}


@pytest.fixture
def console(project: Path) -> Iterator[HttpClient]:
    with console_server(project) as port:
        yield HttpClient(port)


def test_every_page_and_action_needs_a_login(console: HttpClient, project: Path) -> None:
    routes = Console(project, cast(Any, None), time.time, cast(Any, None), cast(Any, None),
                     cast(Any, None), False).routes()
    assert {route.path for route in routes} == {*PAGES, *ACTIONS, *PUBLIC} - {"/healthz"}
    for path in PAGES.values():
        status, headers, _ = console.request("GET", path)
        assert (status, headers["location"]) == (302, f"/login?next={path}"), path
    for path in ACTIONS.values():
        assert console.request("POST", path, {"csrf": "x"})[0] == 401, path
    for path in PUBLIC.values():
        status, headers, _ = console.request("GET", path)
        assert status == 200 and "default-src 'none'" in headers["content-security-policy"]


def test_a_login_shows_the_table_and_the_audit_log(console: HttpClient) -> None:
    assert console.login() == 303
    status, headers, page = console.request("GET", "/")
    assert status == 200
    assert "2021年7月19日(月) AM1:00～AM2:00" in page and "同報（FAX、メール、SMS）" in page
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    status, _, audit = console.request("GET", "/audit")
    assert status == 200 and "<td>desk</td><td>login</td>" in audit  # logins are audited
    status, headers, csv = console.request("GET", "/windows/3/notices/start/unreached.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert csv.splitlines() == ["\ufeffcontact,merchant,name,phones,waiting,fax state,"
                                "fax reason,email state,email reason,sms state,sms reason,"
                                "voice state,voice reason,confirmed,reached,steps"]


def test_the_session_cookie_is_http_only_and_strict(console: HttpClient) -> None:
    _, _, page = console.request("GET", "/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=60)
    connection.request("POST", "/login", body=urlencode(
        {"user": "desk", "password": CONSOLE_PASSWORD, "csrf": csrf.group(1)}), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in console.cookies.items())})
    cookies = [v for k, v in connection.getresponse().getheaders() if k.lower() == "set-cookie"]
    session = next(c for c in cookies if c.startswith("dispatcher_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session


def test_a_post_without_its_csrf_token_is_refused(console: HttpClient) -> None:
    assert console.login() == 303
    assert console.request("POST", "/logout", {})[0] == 403
    assert console.request("POST", "/logout", {"csrf": "guessed"})[0] == 403
    assert console.request("GET", "/")[0] == 200  # still logged in


def test_a_forged_or_expired_cookie_is_refused(console: HttpClient, project: Path) -> None:
    console.cookies["dispatcher_session"] = "eyJ1IjoiZGVzayIsImMiOiJ4In0.forged.signature"
    assert console.request("GET", "/")[0] == 302
    key = bytes.fromhex((project.parent / "var" / "console-secret").read_text().strip())

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 13 * 3600  # sessions last 12 hours

    expired = URLSafeTimedSerializer(key, salt="dispatcher-console-session", signer=LongAgo)
    version = Users(project.parent / "var" / "console-users").version_of("desk")
    console.cookies["dispatcher_session"] = expired.dumps({"u": "desk", "c": "x",
                                                           "v": version})
    assert console.request("GET", "/")[0] == 302
    fresh = URLSafeTimedSerializer(key, salt="dispatcher-console-session")
    console.cookies["dispatcher_session"] = fresh.dumps({"u": "desk", "c": "x",
                                                         "v": version + 1})
    assert console.request("GET", "/")[0] == 302  # a session version the user no longer has
    console.cookies["dispatcher_session"] = fresh.dumps({"u": "desk", "c": "x", "v": version})
    assert console.request("GET", "/")[0] == 200  # the same key, in time: accepted


def test_deleting_the_console_secret_logs_everyone_out_at_once(console: HttpClient,
                                                              project: Path) -> None:
    assert console.login() == 303 and console.request("GET", "/")[0] == 200
    (project.parent / "var" / "console-secret").unlink()  # README: to log everyone out
    assert console.request("GET", "/")[0] == 302  # no restart needed
    assert console.login() == 303 and console.request("GET", "/")[0] == 200  # a new key


def test_wrong_passwords_are_limited_per_address(console: HttpClient) -> None:
    codes = [console.login(password="wrong password") for _ in range(10)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 5
    assert console.login() == 429  # even the right one, from there, for the window
    assert HttpClient(console.port, "127.0.0.2").login() == 303  # from elsewhere: yes


def test_concurrent_wrong_logins_from_one_address_are_checked_at_most_the_limit(
        console: HttpClient) -> None:
    """20 at once used to be 20 passwords checked (the failure was counted after)."""
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: HttpClient(console.port).login(
            password="wrong password"), range(20)))
    assert sorted(codes) == [401] * 5 + [429] * 15


def test_a_forged_forwarded_for_changes_nothing_without_trusted_proxies(
        console: HttpClient, project: Path) -> None:
    """uvicorn's default believes X-Forwarded-For from any client on 127.0.0.1: each wrong
    login chose a new address and was checked. Without [http] trusted_proxies, the peer's
    address counts."""
    codes = [console.login(password="wrong password",
                           extra={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(10)]
    assert codes == [401] * 5 + [429] * 5
    log = (project.parent / "console.log").read_text(encoding="utf-8")
    assert log.count("X-Forwarded-For, which is not believed") == 1  # said once, not 20 times


def test_forwarded_for_is_believed_only_from_the_proxies_named(project: Path) -> None:
    with serving(project, "console", "console: http://",
                 http='trusted_proxies = ["127.0.0.1"]\n') as port:
        proxy = HttpClient(port)  # 127.0.0.1: the proxy, telling each client's address
        codes = [proxy.login(password="wrong password",
                             extra={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(7)]
        assert codes == [401] * 7  # seven clients, none past its limit
        stranger = HttpClient(port, "127.0.0.2")  # not a proxy: its header is not believed
        forged = [stranger.login(password="wrong password",
                                 extra={"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(6)]
        assert forged == [401] * 5 + [429]
        assert proxy.login(extra={"X-Forwarded-For": "192.0.2.9"}) == 303
    async def logins() -> list[dict[str, Any]]:
        async with project_ledger(project) as ledger:
            return [e for e in await ledger.audit_entries() if e["action"] == "login"]
    assert [e["detail"]["address"] for e in asyncio.run(logins())] == ["192.0.2.9"]


def test_nobody_can_lock_an_operator_out_by_guessing_their_password(
        console: HttpClient) -> None:
    guesses = [HttpClient(console.port, f"127.0.1.{n}").login(password="wrong password")
               for n in range(7)]
    assert guesses == [401] * 7  # each from its own address: none blocked, later ones slower
    assert HttpClient(console.port, "127.0.2.1").login() == 303


def test_a_logout_a_new_password_or_a_removal_ends_every_session_at_once(
        console: HttpClient, project: Path) -> None:
    other = HttpClient(console.port)
    assert console.login() == 303 and other.login() == 303
    assert console.request("GET", "/")[0] == other.request("GET", "/")[0] == 200
    _, _, page = other.request("GET", "/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    assert other.request("POST", "/logout", {"csrf": csrf.group(1)})[0] == 303
    assert console.request("GET", "/")[0] == 302  # the other browser's session ended too
    users = Users(project.parent / "var" / "console-users")
    assert console.login() == 303
    users.set_password("desk", "a new password")  # what `dispatcher user passwd` does
    assert console.request("GET", "/")[0] == 302
    assert console.login(password="a new password") == 303
    users.remove("desk")  # `dispatcher user remove`
    assert console.request("GET", "/")[0] == 302
    assert console.request("POST", "/logout", {"csrf": "x"})[0] == 401
    # the name added again: a session of its first life never comes back
    users.add("desk", "another password")
    assert console.login(password="another password") == 303
    kept = dict(console.cookies)
    users.remove("desk")
    users.add("desk", "another password")
    console.cookies = kept
    assert console.request("GET", "/")[0] == 302


def test_markup_in_the_table_shows_as_text(project: Path) -> None:
    text = project.read_text(encoding="utf-8").replace(
        'title = "J-Mups センター 電子マネー メンテナンス (3)"',
        'title = "<script>alert(1)</script>"')
    project.write_text(text, encoding="utf-8")
    assert load_config(project).windows[2].title == "<script>alert(1)</script>"
    with console_server(project) as port:
        browser = HttpClient(port)
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


def test_the_published_files_are_served_to_anyone(project: Path) -> None:
    with project.open("a", encoding="utf-8") as config:
        config.write('\n[publish]\npath = "public"\n')
    subprocess.run([sys.executable, "-m", "dispatcher", "publish", "-c", str(project)],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
                   capture_output=True, timeout=120)
    (project.parent / "public" / "secret.txt").write_text("no", encoding="utf-8")
    with console_server(project) as port:
        client = HttpClient(port)
        status, headers, page = client.request("GET", "/maintenance/")
        assert status == 200 and "J-Mups メンテナンス情報" in page
        assert headers["content-security-policy"].startswith("default-src 'none'")
        status, headers, feed = client.request("GET", "/maintenance/feed.atom")
        assert status == 200 and headers["content-type"].startswith("application/atom+xml")
        assert feed.count("<entry>") == 4
        assert client.request("GET", "/maintenance/secret.txt")[0] == 404
        assert client.request("GET", "/maintenance/..%2Fconfig.toml")[0] == 404


def test_a_merchant_named_like_a_script_shows_as_text(project: Path) -> None:
    use_contacts(project, "X0001,<script>alert(1)</script>,<b>担当</b>,03-5551-0001,"
                          "x1@example.jp,090-1000-0001,emoney\n")
    with console_server(project) as port:
        client = HttpClient(port)
        assert client.login() == 303
        status, _, page = client.request("GET", "/windows/3/notices/start?contact=X0001")
    assert status == 200
    assert "<script>alert(1)</script>" not in page and "<b>担当</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # in the list, previews, unreached
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3


def test_a_notice_that_does_not_exist_is_a_clear_400(console: HttpClient) -> None:
    assert console.login() == 303
    status, _, text = console.request("GET", "/windows/3/notices/reminder-2h")
    assert status == 400 and "window 3 has no 2h reminder (it has 72h, 24h, 1h)" in text
    status, _, text = console.request("GET", "/windows/9/notices/start")
    assert status == 400 and "no window '9'" in text


def test_user_passwd_remove_and_list(console: HttpClient, project: Path, cli: Cli) -> None:
    assert console.login() == 303
    listed = cli("user", "list", "-c", str(project))
    assert listed.code == 0, listed.err
    assert re.fullmatch(r"desk  last login \d{4}年\d{1,2}月\d{1,2}日.*\n", listed.out), listed.out
    unknown = cli("user", "remove", "nobody", "-c", str(project))
    assert unknown.code == 2 and "no user 'nobody'" in unknown.err
    passwd = subprocess.run(
        [sys.executable, "-m", "dispatcher", "user", "passwd", "desk", "-c", str(project)],
        input="a new password\na new password\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert passwd.returncode == 0 and "sessions have ended" in passwd.stdout, passwd.stderr
    assert console.request("GET", "/")[0] == 302
    removed = cli("user", "remove", "desk", "-c", str(project))
    assert removed.code == 0 and "removed desk" in removed.out
    assert cli("user", "list", "-c", str(project)).out.startswith("no users yet")


def test_the_notice_page_finds_a_contact_by_search_not_by_a_list(console: HttpClient) -> None:
    assert console.login() == 303
    _, _, page = console.request("GET", "/windows/3/notices/start")
    assert "<select" not in page and 'type="search" name="contact"' in page
    # in Japanese, as every sentence of the console (it mixed in English)
    assert page.count("FAX: 27 件、約5分38秒（4回線）。お知らせの有効時間 ") == 1
    assert "about" not in page and " min " not in page
    assert "チャネル: FAX、メール、SMS" in page and "<h3>メール</h3>" in page
    _, _, exact = console.request("GET", "/windows/3/notices/start?contact=M0002")
    assert "表示中: M0002 ひまわりベーカリー" in exact
    _, _, several = console.request("GET", "/windows/3/notices/start?contact=%E5%BA%97")
    links = re.findall(r'<li><a href="\?contact=(M\d+)">', several)
    assert 1 < len(links) <= 20 and "表示中: " + links[0] in several
    _, _, none = console.request("GET", "/windows/3/notices/start?contact=nobody-here")
    assert "「nobody-here」に当たる連絡先はありません。" in none and "表示中" not in none


async def test_the_console_reads_the_files_again_only_after_an_edit(project: Path) -> None:
    from dispatcher.web.notices import NoticeDesk

    desk = NoticeDesk(project, cast(Any, None), lambda: datetime.now(UTC))
    first = await desk.inputs()
    assert await desk.inputs() is first  # 100,000 contacts are not read per page view
    with (project.parent / "contacts" / "tokyo.csv").open("a", encoding="utf-8") as out:
        out.write("M9999,追加加盟店,担当,,m9999@example.jp,,emoney\n")
    again = await desk.inputs()
    assert again is not first and again.contacts[-1].id == "M9999"


def test_the_unreached_list_shows_a_page_and_the_csv_has_everyone(
        project: Path, cli: Cli, smtp: tuple[object, int],
        twilio: tuple[object, str]) -> None:
    use_contacts(project, "".join(
        f"R{n:03d},店{n},担当{n},,{'reject' if n % 3 else 'ok'}{n}@example.jp,,emoney\n"
        for n in range(240)))  # two in three e-mails refused (550), the rest sent
    configure(project, real_channels(smtp[1], twilio[1]))
    sent = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
    assert sent.code == 1  # every delivery failed
    with console_server(project) as port:
        desk = HttpClient(port)
        assert desk.login() == 303
        _, _, page = desk.request("GET", "/windows/3/notices/start")
        _, _, csv = desk.request("GET", "/windows/3/notices/start/unreached.csv")
        report = json.loads(cli("unreached", "3", "start", "--json", "-c", str(project)).out)
        listed = cli("unreached", "3", "start", "-c", str(project)).out
        use_contacts(project, "".join(  # ten merchants leave the table after the send
            f"R{n:03d},店{n},担当{n},,ok{n}@example.jp,,emoney\n" for n in range(10, 240)))
        _, _, edited_page = desk.request("GET", "/windows/3/notices/start")
        _, _, edited_csv = desk.request("GET", "/windows/3/notices/start/unreached.csv")
    assert "240 件（最初の 100 件を表示" in edited_page  # those who left still count, last
    rows = list(csv_rows(edited_csv.lstrip("\ufeff").splitlines()))
    assert [r[0] for r in rows[1:]] == [f"R{n:03d}" for n in [*range(10, 240), *range(10)]]
    assert rows[-1][1] == ""  # gone from the table: no merchant to show
    section = page.split('<section id="unreached">')[1].split("</section>")[0]
    assert "240 件（最初の 100 件を表示。すべては CSV に）" in section  # sent: within grace
    shown = re.findall(r"<tr><td>(R\d+)</td>", section)
    assert shown == [c["contact"] for c in report["contacts"]][:100]  # as `unreached` says
    assert len(csv.splitlines()) == 1 + 240
    # a terminal shows the first 100, as the full report orders them
    assert re.findall(r"\bR\d{3}\b", listed) == [c["contact"] for c in report["contacts"]][:100]
    assert "… and 140 more: --csv FILE or --json lists them all" in listed
    later = json.loads(cli("unreached", "3", "start", "--json", "--now",
                           "2099-01-01T00:00:00+09:00", "-c", str(project)).out)
    assert len(later["contacts"]) == 160  # once the grace has passed, the sent ones count

    async def reach() -> tuple[list[str], set[str]]:
        async with project_ledger(project) as ledger:
            record = await ledger.notice(WINDOW_3, "planned", "start")
            assert record is not None
            return (await ledger.contacts_named(record.id),
                    await ledger.contacts_reached(record.id, datetime(2099, 1, 1, tzinfo=UTC)))

    named, reached = asyncio.run(reach())  # what the page counts, in SQL
    assert len(named) == 240 and reached == {f"R{n:03d}" for n in range(0, 240, 3)}


async def test_a_console_alone_keeps_the_last_good_table_and_says_why(project: Path) -> None:
    from dispatcher.web.notices import NoticeDesk

    desk = NoticeDesk(project, cast(Any, None), lambda: datetime.now(UTC))
    good = await desk.inputs()
    text = project.read_text(encoding="utf-8")
    broken = text.replace("end = 2021-07-19T02:00:00", "end = 2021-07-19T00:00:00", 1)
    assert broken != text
    project.write_text(broken, encoding="utf-8")
    assert await desk.inputs() is good  # not a 400: the last good table stays
    assert [p.where.split(": ")[-1] for p in desk.rejected] == ["windows[3].end"]
    project.write_text(text + "# 直した\n", encoding="utf-8")
    fixed = await desk.inputs()
    assert fixed is not good and desk.rejected == ()


def test_the_console_pages_show_a_rejected_edit_above_the_last_good_table(
        console: HttpClient, project: Path) -> None:
    assert console.login() == 303
    assert console.request("GET", "/")[0] == 200  # the table, read once while good
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace("end = 2021-07-19T02:00:00", "end = 2021-07-19T00:00:00",
                                    1), encoding="utf-8")
    for path in ("/", "/audit", "/windows/3/notices/start"):
        status, _, page = console.request("GET", path)
        assert status == 200, (path, page)
        assert "編集は反映されていません" in page and "windows[3].end" in page, path
    status, _, page = console.request("GET", "/")
    assert "2021年7月19日(月) AM1:00～AM2:00" in page  # the table in force
    project.write_text(text + "# 直した\n", encoding="utf-8")
    status, _, page = console.request("GET", "/")
    assert status == 200 and "編集は反映されていません" not in page


def test_a_confirmed_end_passed_without_done_is_an_alert_on_every_page(project: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    timed_window(project, start, start + timedelta(hours=1), None)
    text = project.read_text(encoding="utf-8").replace(
        'notify = "broadcast"', 'notify = "broadcast"\nend_notice = "confirmed"', 1)
    project.write_text(text, encoding="utf-8")
    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        for path in ("/", "/audit", "/windows/3/notices/start"):
            status, _, page = console.request("GET", path)
            assert status == 200 and "作業完了の報告がありません" in page, path
            assert "dispatcher done 3" in page, path
        page = console.request("GET", "/")[2]
        assert "作業中（終了予定超過）" in page
        # no daemon ran: the banner no longer says the merchants were told
        assert "加盟店様への作業延長のお知らせ: 未送信" in page and "送信しました" not in page

        async def report_done() -> None:
            async with project_ledger(project) as ledger:
                await ledger.record_report(WorkReport(
                    WINDOW_3, "planned", Report.DONE, 1, datetime.now(UTC),
                    start + timedelta(hours=1, minutes=20), "", "night-desk"))
        asyncio.run(report_done())
        status, _, page = console.request("GET", "/")
        assert status == 200 and "作業完了の報告がありません" not in page
        assert "終了" in page


def test_done_extend_and_update_from_the_console_carry_what_the_operator_saw(
        project: Path, cli: Cli) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    end = start + timedelta(hours=1)
    timed_window(project, start, end, None)
    text = project.read_text(encoding="utf-8").replace(
        'notify = "broadcast"', 'notify = "broadcast"\nend_notice = "confirmed"', 1)
    project.write_text(text, encoding="utf-8")
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    outbox = project.parent / "var" / "outbox"

    def written(channel: str, tag: str) -> int:
        return len(list((outbox / channel / f"{WINDOW_3}_planned_{tag}").glob("*")))

    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        _, _, page = console.request("GET", "/windows/3/notices/start")
        assert "作業の状況" in page and "作業中" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        seen_end = re.search(r'name="seen_end" value="([^"]+)"', page)
        assert seen_end
        base = {"csrf": csrf.group(1), "slot": "planned", "back": "/"}

        update = {**base, "text": "作業は順調です。", "channel": "sms", "seen_updates": "0"}
        assert console.request("POST", "/windows/3/update", update)[0] == 400  # no id typed
        assert console.request("POST", "/windows/3/update",
                               {**update, "confirm": WINDOW_3})[0] == 303
        wait_for(lambda: written("sms", "update-1") == 26, 120, "the update's SMS")
        again = console.request("POST", "/windows/3/update", {**update, "confirm": WINDOW_3})
        assert again[0] == 409 and "1 update(s) now, not 0" in again[2]  # the same form, twice
        assert "経過報告は反映されていません" in again[2] and "何も記録していません" in again[2]
        assert '<a href="/">元の画面に戻って' in again[2]  # a page of the console, in Japanese

        until = (end + timedelta(minutes=30)).astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")
        extend = {**base, "until": until, "confirm": WINDOW_3}
        stale = console.request("POST", "/windows/3/extend",
                                {**extend, "seen_end": (end - timedelta(minutes=1)).isoformat()})
        assert stale[0] == 409
        assert console.request("POST", "/windows/3/extend",
                               {**extend, "seen_end": seen_end.group(1)})[0] == 303
        wait_for(lambda: written("email", "extended-1") == 28, 120, "the extension's e-mail")

        assert console.request("POST", "/windows/3/done", {**base, "confirm": WINDOW_3})[0] == 303
        wait_for(lambda: written("email", "end") == 28, 120, "the end notice's e-mail")
        _, _, page = console.request("GET", "/windows/3/notices/start")
        assert "終了" in page and "作業完了（終了のご連絡を送信）" not in page
    assert {e["action"] for e in audit_entries(project)} >= {"update", "extended", "done"}


def test_the_console_interrupts_the_work_with_the_date_to_follow(project: Path,
                                                                 cli: Cli) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    timed_window(project, start, start + timedelta(hours=1), None)
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    folder = project.parent / "var" / "outbox" / "email" / f"{WINDOW_3}_planned_interrupted"
    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        _, _, page = console.request("GET", "/windows/3/notices/start")
        assert "作業中断（日程は未定。中断のご連絡を送信）" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        form = {"csrf": csrf.group(1), "slot": "planned", "back": "/",
                "reason": "機器の不具合のため", "confirm": WINDOW_3}
        assert console.request("POST", "/windows/3/interrupt", form)[0] == 303
        wait_for(lambda: len(list(folder.glob("*.eml"))) == 28, 120, "the interrupted e-mail")
        again = console.request("POST", "/windows/3/interrupt", form)
        assert again[0] == 400 and "作業中断は反映されていません" in again[2]
        assert "was interrupted (中断)" in html.unescape(again[2])
        _, _, page = console.request("GET", "/windows/3/notices/start")
        assert "作業中断（日程は未定" not in page  # the work is over: no report forms
    body = readable(next(folder.glob("*.eml")).read_bytes())[1]
    assert "機器の不具合のため、作業を中断いたしました。" in body and "決まり次第" in body


def test_the_night_board_shows_tonights_works_live(project: Path, cli: Cli) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    timed_window(project, start, start + timedelta(hours=1), None)
    text = project.read_text(encoding="utf-8").replace(
        'notify = "broadcast"', 'notify = "broadcast"\nend_notice = "confirmed"', 1)
    project.write_text(text, encoding="utf-8")
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        status, headers, page = console.request("GET", "/night")
        assert status == 200 and 'id="night-3"' in page
        assert "作業中" in page and "経過報告を送信" in page
        assert "延長（延長のご連絡を送信）" in page
        assert 'id="night-1"' not in page  # the shipped windows of 2021 are not tonight's
        room = re.search(r'data-sms-units="(\d+)" data-sms-max="2"', page)
        assert room and 40 < int(room.group(1)) < 140  # the update SMS before its text
        layout = re.search(r'data-layout="([^"]+)"', page)
        assert layout and "script-src 'self'" in headers["content-security-policy"]

        event = console.first_event("/night/events")
        [panel] = event["panels"]
        assert panel["number"] == 3 and panel["state"] == "in_progress"
        assert panel["next"].startswith("overrun ")  # a confirmed end: the overrun comes next
        notice = panel["notice"]
        assert notice["tag"] == "start" and notice["percent"] == 100
        assert {(c["channel"], c["done"], c["total"]) for c in notice["channels"]} == {
            ("email", 28, 28), ("sms", 26, 26)}
        unreached = cli("unreached", "3", "start", "--json", "-c", str(project))
        assert notice["unreached"] == json.loads(unreached.out)["unreached"] > 0  # in grace
        assert notice["delivered"] == 0  # the outbox: no receipts
        assert html.unescape(layout.group(1)) == json.dumps(event["layout"])

        assert cli("update", "3", "--text", "作業は順調です。", "--yes", "-c",
                   str(project)).code == 0
        event = console.first_event("/night/events")
        assert event["panels"][0]["notice"]["tag"] == "update-1"
        assert html.unescape(layout.group(1)) != json.dumps(event["layout"])  # the page is stale


def test_an_open_event_stream_ends_once_its_user_is_removed(console: HttpClient,
                                                            project: Path) -> None:
    """A revoked session's streams end within a second or two (they used to go on until
    the daemon stopped)."""
    assert console.login() == 303
    connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=60)
    cookies = "; ".join(f"{k}={v}" for k, v in console.cookies.items())
    connection.request("GET", "/night/events", headers={"Cookie": cookies})
    response = connection.getresponse()
    try:
        assert response.status == 200
        assert response.readline().startswith(b"data: ")  # the board streams
        Users(project.parent / "var" / "console-users").remove("desk")
        rest = response.read()  # to its end: the timeout is only a guard against a hang
    finally:
        connection.close()
    assert rest.count(b"data: ") <= 3  # it ended, a second or so after the removal


def test_a_body_past_its_routes_limit_is_refused_before_it_is_read(
        console: HttpClient) -> None:
    """A 200 MB POST used to be read whole before its 403 (the daemon grew by 800 MB): now
    refused by its declared length at once, or as its chunks pass the limit."""
    def post(path: str, headers: dict[str, str], body: Any, chunked: bool = False
             ) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=60)
        try:
            connection.request("POST", path, body=body, headers=headers,
                               encode_chunked=chunked)
            return connection.getresponse().status
        finally:
            connection.close()

    declared = {"Content-Length": str(200 * 1024 * 1024),
                "Content-Type": "application/x-www-form-urlencoded"}
    assert post("/twilio/inbound", declared, b"") == 413  # nothing of it read
    assert post("/login", declared, b"") == 413
    chunks = (b"x" * 16384 for _ in range(6))  # 96 kB, its length not said
    assert post("/twilio/status/1-x", {"Content-Type": "application/x-www-form-urlencoded",
                                        "Transfer-Encoding": "chunked"}, chunks, True) == 413
    assert console.login() == 303  # a form within its limit goes through


def test_connections_that_send_nothing_are_closed(console: HttpClient) -> None:
    """uvicorn kept 50 of 50 half-open connections for over 30 s; the server now closes a
    connection that has had no request for IDLE_CONNECTION_SECONDS."""
    quiet = [socket.create_connection(("127.0.0.1", console.port), timeout=120)
             for _ in range(20)]
    # one that asks once, then sends a byte of another request and nothing more: the
    # keep-alive timer stops on the byte; it is closed all the same
    once = socket.create_connection(("127.0.0.1", console.port), timeout=120)
    once.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"ok\n"):  # the whole answer, so that only a close is left
        answer += once.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    once.sendall(b"G")
    quiet.append(once)
    try:
        for connection in quiet:
            assert connection.recv(1) == b""  # closed by the server (the timeout: a guard)
    finally:
        for connection in quiet:
            connection.close()
    assert console.request("GET", "/login")[0] == 200  # it serves on


def audit_entries(project: Path) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with project_ledger(project) as ledger:
            return await ledger.audit_entries(WINDOW_3)
    return asyncio.run(read())


def test_a_voice_window_s_notice_page_answers_and_an_unknown_fax_contact_is_refused(
        project: Path) -> None:
    """A call has no SMS segments to count (its page answered 500); the fax image of a
    contact that is not in the table is a 400 naming it (it never answered)."""
    text = project.read_text(encoding="utf-8").replace(
        'channels = ["fax", "email", "sms"]', 'channels = ["fax", "email", "sms", "voice"]', 1)
    project.write_text(text + '\n[channels.voice]\nbackend = "outbox"\n', encoding="utf-8")
    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        status, _, page = console.request("GET", "/windows/3/notices/start?contact=M0001")
        assert status == 200 and "<h3>電話</h3>" in page
        status, _, body = console.request("GET",
                                          "/windows/3/notices/start/fax.png?contact=UNKNOWN")
        assert status == 400 and "UNKNOWN" in body


def test_a_notice_not_sent_and_an_alert_that_did_not_go_are_on_every_page(
        project: Path, cli: Cli) -> None:
    """What the daemon writes when it cannot send a notice, and the alerts that failed or
    were claimed by a sender that stopped: banners on every page, `status` and metrics."""
    now = datetime.now(UTC).replace(microsecond=0)

    async def troubles() -> None:
        async with project_ledger(project) as ledger:
            await ledger.record_failure(WINDOW_3, "planned", "start", "email: login refused: "
                                        "535 5.7.8 <b>bad</b>", "login", now)
            claim = await ledger.claim_alert(f"alert/{WINDOW_3}/planned/overrun",
                                             Channel.EMAIL, "desk@example.jp", now)
            assert claim is not None
            await ledger.finish_alert(claim, "550 mailbox unavailable")
            await ledger.claim_alert(f"alert/{WINDOW_3}/planned/overrun", Channel.SMS,
                                     "+819012340099", now - timedelta(minutes=10))
            await ledger.claim_alert(f"alert/{WINDOW_3}/planned/overrun", Channel.SMS,
                                     "+819012340098", now)  # being sent: no trouble yet

    asyncio.run(troubles())
    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        for path in ("/", "/audit", "/night"):
            status, _, page = console.request("GET", path)
            assert status == 200 and "送信できていないお知らせがあります" in page, path
            assert "「start」（planned）を送信できていません" in page
            assert "535 5.7.8 &lt;b&gt;bad&lt;/b&gt;" in page and "ログイン情報を直し" in page
            assert "運用担当へのアラートが届いていません" in page
            assert "desk@example.jp: 550 mailbox unavailable" in page
            assert "+819012340099: 送信されないままです" in page
            assert "+819012340098" not in page
    status = cli("status", "3", "-c", str(project)).out
    assert "operators' alert not sent" in status and "claimed, never sent" in status
    shown = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
    assert [a["address"] for a in shown["alerts_not_sent"]] == ["desk@example.jp",
                                                                "+819012340099"]


    async def scraped() -> str:
        metrics = Metrics()
        async with project_ledger(project) as ledger:
            await metrics.read_ledger(ledger, load_inputs(project), datetime.now(UTC))
        return generate_latest(metrics.registry).decode()

    text = asyncio.run(scraped())
    for state, count in (("sent", 0), ("sending", 1), ("failed", 1), ("unsent", 1)):
        assert f'dispatcher_operator_alerts{{state="{state}"}} {count}.0' in text
    assert "dispatcher_notices_failing 1.0" in text


def test_the_postpone_form_says_which_notice_will_go(project: Path) -> None:
    """Before the start: the postponed notice; once the start notice went: a postponement
    interrupts the work, and the form says the interrupted notice goes (中断)."""
    with console_server(project) as port:
        console = HttpClient(port)
        assert console.login() == 303
        page = console.request("GET", "/windows/3/notices/start")[2]
        assert "実施日変更のご連絡を送信" in page and "作業を中断して" not in page

        async def started() -> None:
            async with project_ledger(project) as ledger:
                await planned_notice(ledger, "start", [], datetime.now(UTC), "schedule",
                                     WINDOW_3)
        asyncio.run(started())
        page = console.request("GET", "/windows/3/notices/start")[2]
        assert "作業を中断して予備日に延期（作業中断のご連絡を送信）" in page
