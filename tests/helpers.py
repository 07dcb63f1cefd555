"""What several test modules share: the project's paths and config edits, the CLI's result,
reading the ledger, building a backend and a rendered message, waiting for a condition.
Test modules import from here (and start servers through tests/servers.py), never from
each other."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import mailbox
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from playwright.sync_api import Page

from dispatcher.daemon import Daemon
from dispatcher.demo import Arrival, MailSink, free_port
from dispatcher.ledger import (
    DeliveryRecord,
    Ledger,
    NewDelivery,
    NoticeRecord,
    Opening,
    engine_url,
)
from dispatcher.render import FaxPages, Renderer
from dispatcher.schedule import Decision
from dispatcher.send import Backend, Outgoing, make_backends
from dispatcher.table import Channel, Contact, Phase, build_notice, find_window, load_config
from dispatcher.web import Users

ROOT = Path(__file__).resolve().parent.parent
TOKYO = ZoneInfo("Asia/Tokyo")
CONTACTS_HEADER = "id,merchant,name,fax,email,sms,tags\n"
WINDOW_3 = "2021-07-19-emoney"
TWILIO_ENV = {"TWILIO_ACCOUNT_SID": "ACtest", "TWILIO_AUTH_TOKEN": "secret"}

LEDGER_T0 = datetime(2021, 7, 19, 1, 0, tzinfo=UTC)  # "now" of the ledger's contract tests
# before the shipped table's first window and every reserve slot: a postponement may go
BEFORE_EVERY_WINDOW = datetime(2021, 6, 1, tzinfo=UTC)
CHECK_AT = ("--now", "2021-07-01T09:00:00+09:00")  # `check` of the shipped table, before its night

FAST_RETRY = """
[retry]
initial_delay_seconds = 0.05
max_delay_seconds = 0.2
max_attempts = 3
"""


@dataclass(frozen=True)
class Result:
    """What one `dispatcher ...` run printed, and its exit code."""

    code: int
    out: str
    err: str


Cli = Callable[..., Result]


def configure(project: Path, channels: str, retry: str = "") -> None:
    """Replace the shipped [channels.*] tables of the project's config."""
    text = project.read_text(encoding="utf-8")
    text = text[: text.index("# Each channel's backend")]
    project.write_text(text + channels + retry, encoding="utf-8")


def smtp_channel(port: int) -> str:
    """The [channels.email] table of e-mail to a local SMTP server without TLS."""
    return f"""
[channels.email]
backend = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
"""


def real_channels(smtp_port: int, twilio_url: str, extra_email: str = "") -> str:
    """E-mail to a local SMTP server, SMS to a local Twilio-speaking one, fax by e-mail."""
    return smtp_channel(smtp_port) + f"""from = "J-Mups センター <maintenance@j-mups.example.jp>"
concurrency = 4
{extra_email}
[channels.sms]
backend = "twilio"
from = "+815012345678"
base_url = "{twilio_url}"
concurrency = 4

[channels.fax]
backend = "email-gateway"
gateway_address = "{{national}}@fax.example.jp"
concurrency = 2
"""


def dispatcher(project: Path, *args: str) -> str:
    """`dispatcher ARGS... --config PROJECT` in its own process (a browser test's sync
    Playwright holds this thread's event loop); its output, once it succeeded."""
    done = subprocess.run([sys.executable, "-m", "dispatcher", *args, "--config", str(project)],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def use_contacts(project: Path, rows: str) -> None:
    """Replace the shipped contacts with ``rows`` (CSV lines without the header)."""
    folder = project.parent / "contacts"
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "test.csv").write_text(CONTACTS_HEADER + rows, encoding="utf-8")


@contextlib.asynccontextmanager
async def project_ledger(config_path: Path) -> AsyncIterator[Ledger]:
    """The ledger named by the project's config, opened for a test to read."""
    config = load_config(config_path)
    ledger = await Ledger.open(engine_url(config.settings.ledger_url, config_path.parent))
    try:
        yield ledger
    finally:
        await ledger.close()


async def deliveries(project: Path, window: str = WINDOW_3) -> list[DeliveryRecord]:
    """Every delivery of every notice of ``window`` in the project's ledger."""
    async with project_ledger(project) as ledger:
        notices = await ledger.notices_of(window)
        return [d for n in notices for d in await ledger.deliveries_of(n.id)]


def delivery_states(project: Path) -> list[str]:
    """The state of each delivery of window 3, read now (for polling from a sync test)."""
    return [str(d.state) for d in asyncio.run(deliveries(project))]


@contextlib.asynccontextmanager
async def still_daemon(project: Path, moment: datetime) -> AsyncIterator[Daemon]:
    """An opened daemon whose clock stands still at ``moment``; closed afterwards."""
    daemon = Daemon(project, lambda: moment)
    await daemon.open()
    try:
        yield daemon
    finally:
        await daemon.close()


async def tick_after_edit(daemon: Daemon) -> list[Decision]:
    """A look that sees an edit: the reload it starts (in a worker thread) is waited for,
    then the daemon looks again with the new table."""
    await daemon.tick()
    await daemon.wait_for_reload()
    return await daemon.tick()


async def run_daemon_at(project: Path, moment: datetime) -> None:
    """One look by a daemon whose clock stands at ``moment``, and the sends it starts."""
    async with still_daemon(project, moment) as daemon:
        await daemon.tick()
        await daemon.wait_for_sends()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Polls ``condition`` until it holds; ``seconds`` is a generous bound against a hang,
    never a measure of speed."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {seconds} s")
        time.sleep(0.05)


def backend_from(project: Path, channel: Channel, table: str) -> Backend:
    """The backend ``table`` selects, built from the project's config as the CLI builds it."""
    configure(project, table)
    return make_backends(load_config(project), [channel], TWILIO_ENV)[channel]


async def outgoing(project: Path, channel: Channel, address: str) -> Outgoing:
    """Window 3's start notice for one contact, rendered as dispatch.py renders it."""
    config = load_config(project)
    window = find_window(config.windows, "3")
    sent_at = datetime.now(UTC)
    notice = build_notice(window, window.planned, Phase.START)
    addresses = {c: address if c is channel else None for c in Channel}
    contact = Contact("K1", "さくら書店", "佐藤", addresses[Channel.FAX],
                      addresses[Channel.EMAIL], addresses[Channel.SMS], frozenset(), "k.csv:2")
    message = Renderer(config.settings.templates_dir, config).render(notice, contact, channel,
                                                                     sent_at)
    document = (FaxPages(config.settings.templates_dir).render(message.body)
                if channel is Channel.FAX else None)
    return Outgoing(1, notice.key, message, sent_at, 1, "dispatcher-1-0123456789ab", document)


RESERVE_AHEAD = "reserve-2030-08-23-0100"


def reserve_ahead(project: Path) -> None:
    """Window 3's reserve slot on the same day and hours of 2030: a command run in its own
    process, on the real clock, may postpone the window to it (not to a date gone)."""
    text = project.read_text(encoding="utf-8")
    reserve = "  start = 2021-08-23T01:00:00\n  end = 2021-08-23T02:00:00"
    assert reserve in text
    project.write_text(text.replace(reserve, reserve.replace("2021-08-23", "2030-08-23")),
                       encoding="utf-8")


def timed_window(project: Path, start: datetime, end: datetime, smtp_port: int | None) -> None:
    """Window 3 at ``start``-``end`` (its reserve a month later), e-mail to a local server."""
    text = project.read_text(encoding="utf-8")
    text = text.replace("start = 2021-07-19T01:00:00\nend = 2021-07-19T02:00:00",
                        f"start = {start.isoformat()}\nend = {end.isoformat()}")
    text = text.replace("  start = 2021-08-23T01:00:00\n  end = 2021-08-23T02:00:00",
                        f"  start = {(start + timedelta(days=30)).isoformat()}\n"
                        f"  end = {(end + timedelta(days=30)).isoformat()}")
    text = text.replace('channels = ["fax", "email", "sms"]', 'channels = ["email", "sms"]')
    if smtp_port is not None:
        text = text.replace('[channels.email]\nbackend = "outbox"',
                            f'[channels.email]\nbackend = "smtp"\nhost = "127.0.0.1"\n'
                            f'port = {smtp_port}\nsecurity = "none"')
    project.write_text(text, encoding="utf-8")


def subjects(sink: MailSink) -> list[tuple[float, str, str]]:
    """(arrival time, recipient, subject) of every message the sink accepted."""
    found = []
    for arrival in sink.arrivals():
        subject = str(make_header(decode_header(message_from_bytes(arrival.content)["Subject"])))
        found.append((arrival.at, arrival.recipients[0], subject))
    return found


def sms_count(project: Path) -> int:
    """SMS written to the outbox so far (both notices)."""
    return len(list((project.parent / "var" / "outbox" / "sms").rglob("*.txt")))


def start_daemon(project: Path, log: Path, env: Mapping[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "run", "-c", str(project)],
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT)


def all_sent(project: Path, count: int) -> bool:
    """The ledger holds ``count`` deliveries of window 3 and every one is sent: no daemon
    will claim any of them again."""
    states = delivery_states(project)
    return len(states) == count and set(states) == {"sent"}


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=300) == 0, log.read_text()
    return log.read_text()


def dsn(arrival: Arrival, action: str, status: str, *, to: str | None = None,
        envid: bool = False) -> bytes:
    """The delivery status notification an MTA sends back for ``arrival`` (RFC 3464),
    written as Postfix writes one."""
    envid_line = "".join(f"Original-Envelope-Id: {o.partition('=')[2]}\n"
                         for o in arrival.options if envid and o.startswith("ENVID="))
    original_headers = arrival.content.split(b"\r\n\r\n")[0].decode("ascii")
    text = f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.jp>
To: {to if to is not None else arrival.sender}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0"

--B0
Content-Type: text/plain

This is the mail system at host mx.example.jp.

--B0
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp
{envid_line}
Final-Recipient: rfc822; {arrival.recipients[0]}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} no such user

--B0
Content-Type: text/rfc822-headers

{original_headers}
--B0--
"""
    return text.replace("\r\n", "\n").encode()


def maildir(folder: Path, mails: list[bytes]) -> Path:
    box = mailbox.Maildir(folder, create=True)
    for raw in mails:
        box.add(raw)
    return folder


def new_deliveries(count: int, channel: str = "email") -> list[NewDelivery]:
    """``count`` deliveries to plan, one per contact ``C0000``…"""
    return [NewDelivery(f"C{n:04d}", channel, f"c{n}@example.jp") for n in range(count)]


async def planned_notice(ledger: Ledger, phase: str, new: list[NewDelivery], at: datetime,
                         triggered_by: str = "t", window: str = "w3",
                         slot: str = "planned") -> NoticeRecord:
    """A notice opened with ``new`` deliveries, each of their channels released at ``at``."""
    releases: dict[str, datetime | None] = {d.channel: at for d in new} or {"email": at}
    record, _, _ = await ledger.open_notice(
        Opening(window, slot, phase, triggered_by, releases), new, at)
    return record


def notice_channels(cli: Cli, project: Path) -> dict[str, dict[str, int]]:
    """`status 3 --json`'s deliveries by channel and state, of window 3's first notice."""
    result = cli("status", "3", "--json", "-c", str(project))
    assert result.code == 0, result.err
    channels: dict[str, dict[str, int]] = json.loads(result.out)["notices"][0]["channels"]
    return channels


CONSOLE_PASSWORD = "correct horse battery"


class HttpClient:
    """Just enough of a browser: cookies kept by name, redirects not followed."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.port = port
        self.source = source  # any 127.x.y.z: the console sees another address
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """``extra``: more request headers (a forged X-Forwarded-For)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                                source_address=(self.source, 0))
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                   **(extra or {})}
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

    def first_event(self, path: str) -> Any:
        """The first server-sent event of the stream at ``path``, its data read as JSON."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                                source_address=(self.source, 0))
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.status == 200, response.status
        try:
            while line := response.readline():
                if line.startswith(b"data: "):
                    return json.loads(line[len(b"data: "):])
            raise AssertionError(f"{path} ended without an event")
        finally:
            connection.close()

    def login(self, user: str = "desk", password: str = CONSOLE_PASSWORD,
              extra: dict[str, str] | None = None) -> int:
        _, _, page = self.request("GET", "/login", extra=extra)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf, page
        status, _, _ = self.request("POST", "/login", {"user": user, "password": password,
                                                      "csrf": csrf.group(1), "next": "/"},
                                    extra)
        return status


@contextlib.contextmanager
def console_server(project: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """`dispatcher console` for ``project`` on a free port, with one user (desk)."""
    with serving(project, "console", "console: http://", env) as port:
        yield port


@contextlib.contextmanager
def daemon_with_console(project: Path) -> Iterator[int]:
    """`dispatcher run` for ``project``, its console on a free port, with one user (desk)."""
    with serving(project, "run", "http listening") as port:
        yield port


@contextlib.contextmanager
def serving(project: Path, command: str, ready: str, env: dict[str, str] | None = None,
            http: str = "") -> Iterator[int]:
    """`dispatcher COMMAND` listening on a free port, until its log says ``ready``;
    ``http``: more keys of its [http] table."""
    port = free_port()
    with project.open("a", encoding="utf-8") as config:
        config.write(f'\n[http]\nlisten = "127.0.0.1:{port}"\n{http}')
    Users(project.parent / "var" / "console-users").add("desk", CONSOLE_PASSWORD)
    log = project.parent / f"{command}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", command, "-c", str(project)],
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: ready in log.read_text(encoding="utf-8")
                 or process.poll() is not None, 120, f"`dispatcher {command}` to listen")
        assert process.poll() is None, log.read_text(encoding="utf-8")
        yield port
    finally:
        process.terminate()
        process.wait()


CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; without the background-networking flags it keeps
# trying to reach Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = ROOT / "var" / "test-artifacts"


def log_in(page: Page, base: str) -> None:
    """Log in to the console at ``base`` as desk, in a real browser."""
    page.goto(f"{base}/")
    page.fill("input[name=user]", "desk")
    page.fill("input[name=password]", CONSOLE_PASSWORD)
    page.click("form.login button")
    page.wait_for_url(f"{base}/")


def keep_screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    """A screenshot among the tests' artefacts (var/test-artifacts, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)
    return ARTIFACTS / name
