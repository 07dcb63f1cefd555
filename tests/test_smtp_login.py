"""SMTP login trouble is the channel's problem, not each message's: a 454 (the server
cannot check logins now) pauses the channel and probes like an outage; a 535 (a wrong
password) stops it with one clear error and leaves every delivery pending, so that a
corrected password finishes the notice, sending nothing twice."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import generate_latest

from dispatcher.demo import mail_server
from tests.helpers import (
    Cli,
    HttpClient,
    configure,
    console_server,
    deliveries,
    notice_channels,
    project_ledger,
    real_channels,
    still_daemon,
    use_contacts,
)
from tests.servers import FakeTwilio, SmtpSink

LOGIN = """username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
"""
# a test server on 127.0.0.1 takes logins without TLS, which aiosmtpd warns about
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
FAST_PROBES = "\n[retry]\ninitial_delay_seconds = 0.05\nmax_delay_seconds = 0.2\n"


class Accounts:
    """The server's side of AUTH: one user and password; the first ``busy`` logins get
    454 (the password store is away)."""

    def __init__(self, password: str, busy: int = 0) -> None:
        self.password = password
        self.busy = busy
        self.tries: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 data: Any) -> AuthResult:
        with self._lock:
            self.tries.append(mechanism)
            if self.busy > 0:
                self.busy -= 1
                return AuthResult(success=False, handled=False,
                                  message="454 4.7.0 Temporary authentication failure")
        login = data if isinstance(data, LoginPassword) else None
        good = login is not None and login.login == b"desk" and \
            login.password == self.password.encode()
        return AuthResult(success=good, handled=False)


@contextmanager
def auth_smtp(accounts: Accounts) -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    with mail_server(sink, authenticator=accounts, auth_required=True,
                     auth_require_tls=False) as port:
        yield sink, port


def test_a_wrong_password_stops_the_channel_and_the_corrected_one_finishes_it(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_contacts(project, "".join(f"M{n},加盟店{n},担当{n},,user{n}@shop.example.jp,,emoney\n"
                                  for n in range(6)))
    accounts = Accounts("the right password")
    monkeypatch.setenv("SMTP_USER", "desk")
    monkeypatch.setenv("SMTP_PASSWORD", "a wrong password")
    with auth_smtp(accounts) as (sink, port):
        configure(project, real_channels(port, twilio[1], LOGIN))
        refused = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
        assert refused.code == 1
        assert "email stopped: SMTP login refused: 535" in refused.err
        assert "6 deliveries are still pending" in refused.err
        # one login per connection (aiosmtplib tries each mechanism the server offers)
        assert len(sink) == 0 and accounts.tries.count("PLAIN") <= 4
        assert notice_channels(cli, project) == {"email": {"pending": 6}}
        assert {(d.attempts, d.error_code) for d in asyncio.run(deliveries(project))} == {
            (0, "535")}
        status = cli("status", "3", "-c", str(project))
        assert "waiting: email 6 deliveries, pending after: SMTP login refused: 535" in status.out
        report = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
        # sent by hand on e-mail only, its e-mail still to go: sending (a daemon would
        # resume the e-mail only: the channels left out are not released before its time)
        assert report["notices"][0]["state"] == "sending"
        assert report["notices"][0]["waiting"][0]["count"] == 6
        with console_server(project) as console_port:
            desk = HttpClient(console_port)
            assert desk.login() == 303
            _, _, page = desk.request("GET", "/windows/3/notices/start")
        assert page.count("メール: 6 件が送信待ち（SMTP login refused: 535") == 1

        monkeypatch.setenv("SMTP_PASSWORD", "the right password")
        fixed = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
        assert fixed.code == 0, fixed.err
    assert sorted(sink.recipients()) == [f"user{n}@shop.example.jp"
                                          for n in range(6)]
    assert notice_channels(cli, project) == {"email": {"sent": 6}}
    assert {d.attempts for d in asyncio.run(deliveries(project))} == {1}


def test_a_454_at_login_pauses_the_channel_and_counts_no_attempt(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    use_contacts(project, "".join(f"M{n},加盟店{n},担当{n},,user{n}@shop.example.jp,,emoney\n"
                                  for n in range(3)))
    accounts = Accounts("the right password", busy=6)
    monkeypatch.setenv("SMTP_USER", "desk")
    monkeypatch.setenv("SMTP_PASSWORD", "the right password")
    with auth_smtp(accounts) as (sink, port):
        configure(project, real_channels(port, twilio[1], LOGIN) + FAST_PROBES)
        sent = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
        assert sent.code == 0, sent.err
    assert accounts.busy == 0 and len(sink) == 3
    assert "email: provider unreachable" in caplog.text and "reachable again" in caplog.text
    assert {d.attempts for d in asyncio.run(deliveries(project))} == {1}


async def test_the_daemon_does_not_try_a_refused_login_again_and_again(
        project: Path, twilio: tuple[FakeTwilio, str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    use_contacts(project, "M1,加盟店1,担当1,,user1@shop.example.jp,,emoney\n")
    accounts = Accounts("the right password")
    monkeypatch.setenv("SMTP_USER", "desk")
    monkeypatch.setenv("SMTP_PASSWORD", "a wrong password")
    during_the_work = datetime(2021, 7, 18, 16, 0, 30, tzinfo=UTC)  # 01:00:30 in Tokyo
    with auth_smtp(accounts) as (_, port):
        configure(project, real_channels(port, twilio[1], LOGIN))
        async with still_daemon(project, during_the_work) as daemon:
            for _ in range(3):  # three looks: the start notice, then its resumption twice
                await daemon.tick()
                await daemon.wait_for_sends()
    paused = [r for r in caplog.records if r.getMessage().startswith("notice paused")]
    assert len(paused) == 1 and accounts.tries.count("PLAIN") == 1
    assert getattr(paused[0], "fields", {})["retry_in_seconds"] == 600


async def _looks(project: Path, moment: datetime, looks: int) -> str:
    """``looks`` looks by a daemon standing at ``moment``; its /metrics text after them."""
    async with still_daemon(project, moment) as daemon:
        for _ in range(looks):
            await daemon.tick()
            await daemon.wait_for_sends()
        async with project_ledger(project) as ledger:
            await daemon.metrics.read_ledger(ledger, daemon.inputs, moment)
        return generate_latest(daemon.metrics.registry).decode()


def test_a_notice_the_daemon_cannot_send_says_so_where_operators_look(
        project: Path, twilio: tuple[FakeTwilio, str], monkeypatch: pytest.MonkeyPatch,
        cli: Cli) -> None:
    """A refused login: `status`, `windows` and /metrics say the start notice is not sent,
    why, and what to do; once the login is corrected and it goes, they stop saying so."""
    use_contacts(project, "M1,加盟店1,担当1,,user1@shop.example.jp,,emoney\n")
    monkeypatch.setenv("SMTP_USER", "desk")
    monkeypatch.setenv("SMTP_PASSWORD", "a wrong password")
    during_the_work = datetime(2021, 7, 18, 16, 0, 30, tzinfo=UTC)  # 01:00:30 in Tokyo
    with auth_smtp(Accounts("the right password")) as (sink, port):
        configure(project, real_channels(port, twilio[1], LOGIN))
        metrics = asyncio.run(_looks(project, during_the_work, 1))
        assert 'dispatcher_notice_failures_total{phase="start"} 1.0' in metrics
        assert "dispatcher_notices_failing 1.0" in metrics
        status = cli("status", "3", "-c", str(project))
        assert "start (planned): NOT SENT, failing since 2021年7月19日(月) AM1:00" in status.out
        assert "login refused" in status.out and "correct the login" in status.out
        shown = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
        [failure] = shown["failing"]
        assert failure["phase"] == "start" and failure["since"] == "2021-07-19T01:00:30+09:00"
        windows = json.loads(cli("windows", "--json", "-c", str(project)).out)
        assert next(w for w in windows if w["number"] == 3)["failing"] == ["start"]
        assert "start NOT SENT" in cli("windows", "-c", str(project)).out

        monkeypatch.setenv("SMTP_PASSWORD", "the right password")
        metrics = asyncio.run(_looks(project, during_the_work, 1))
        assert "dispatcher_notices_failing 0.0" in metrics and len(sink) == 1
        assert "NOT SENT" not in cli("status", "3", "-c", str(project)).out
        assert json.loads(cli("status", "3", "--json", "-c", str(project)).out)["failing"] == []

        async def recorded() -> dict[str, object]:
            async with project_ledger(project) as ledger:
                return dict(await ledger.notice_failures())
        assert asyncio.run(recorded()) == {}  # cleared when the send went through
