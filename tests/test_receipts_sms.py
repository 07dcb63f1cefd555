"""SMS receipts: Twilio's status callbacks to the daemon's own HTTP server (signed as
Twilio signs them), polling for statuses that never came, and the help desk's list when 3
SMS come back undelivered and 2 e-mails bounce."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.demo import free_port
from dispatcher.errors import UnavailableError
from dispatcher.ledger import Applied
from dispatcher.receipts import TwilioPoller, TwilioReports
from dispatcher.send import DeliveryTokens, TwilioSms, make_backends
from dispatcher.table import Channel, load_config
from tests.helpers import (
    TWILIO_ENV,
    Cli,
    configure,
    deliveries,
    dsn,
    maildir,
    notice_channels,
    project_ledger,
    real_channels,
    start_daemon,
    stop,
    use_contacts,
    wait_for,
)
from tests.servers import FakeTwilio, dsn_smtp_server


def contacts(count: int) -> str:
    return "".join(f"M{n},加盟店{n},担当{n},,user{n}@shop.example.jp,090-5555-{n:04d},emoney\n"
                   for n in range(count))


def http(port: int) -> str:
    return f"""
[http]
listen = "127.0.0.1:{port}"

[receipts.sms]
poll_after_minutes = 600

[receipts.email]
bounce_address = "bounces+{{token}}@j-mups.example.jp"
"""


def number(n: int) -> str:
    return f"+81905555{n:04d}"


def test_callbacks_and_bounces_show_exactly_who_was_not_reached(
        cli: Cli, project: Path, tmp_path: Path, twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    use_contacts(project, contacts(6))
    for n, code in ((0, "30005"), (1, "30006"), (2, "30007")):
        fake.fates[number(n)] = ("undelivered", code)
    port = free_port()
    with dsn_smtp_server() as (sink, smtp_port):
        configure(project, real_channels(smtp_port, url) + http(port))
        sent = cli("send", "3", "start", "--channel", "email", "--channel", "sms", "--yes",
                   "-c", str(project))
        assert sent.code == 0, sent.err
    callbacks = {form["StatusCallback"] for form in fake.accepted}
    assert len(callbacks) == 6 and all(
        c.startswith(f"http://127.0.0.1:{port}/twilio/status/") for c in callbacks)
    sids = {form["To"]: f"SM{i + 1:032d}" for i, form in enumerate(fake.accepted)}

    log = tmp_path / "daemon.log"
    daemon = start_daemon(project, log)
    try:
        wait_for(lambda: "http listening" in log.read_text(), 120, "the daemon's HTTP server")
        forged = fake.report(sids[number(4)], "undelivered", "30005", signature="bm90IHR3aWxpbw==")
        assert forged == 403
        assert [fake.report(sids[number(n)]) for n in range(6)] == [200] * 6
        assert fake.report(sids[number(3)], "sent") == 200  # late and out of order
        assert fake.report(sids[number(0)]) == 200  # the same report again
        arrivals = sorted(sink.arrivals(), key=lambda a: a.recipients[0])
        bounces = maildir(tmp_path / "bounces", [dsn(arrivals[0], "failed", "5.1.1"),
                                                 dsn(arrivals[3], "failed", "5.1.1")])
        assert cli("receipts", "read-mail", str(bounces), "--apply", "-c",
                   str(project)).code == 0
    finally:
        output = stop(daemon, log)
    assert "bad signature refused" in output
    assert notice_channels(cli, project) == {"email": {"bounced": 2, "sent": 4},
                                       "sms": {"delivered": 3, "undelivered": 3}}
    by_contact = {d.contact_id + d.channel: d for d in asyncio.run(deliveries(project))}
    assert by_contact["M0sms"].error_code == "30005"
    assert by_contact["M4sms"].state == "delivered"
    result = cli("unreached", "3", "start", "--json", "--now", "2099-01-01T00:00:00+09:00",
                 "-c", str(project))
    report: dict[str, Any] = json.loads(result.out)
    assert [c["contact"] for c in report["contacts"]] == ["M0"]
    assert report["contacts"][0]["channels"]["sms"]["state"] == "undelivered"
    assert report["contacts"][0]["phones"] == [number(0)]


def test_statuses_that_never_came_are_polled_once_each_and_a_retried_code_resends(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    use_contacts(project, contacts(4))
    fake.fates[number(1)] = ("undelivered", "30003")  # retried: a new message
    fake.fates[number(2)] = ("failed", "30007")
    fake.fates[number(3)] = ("sent", None)             # no final word yet
    configure(project, real_channels(free_port(), url))
    assert cli("send", "3", "start", "--channel", "sms", "--yes", "-c",
               str(project)).code == 0
    later = datetime.now(UTC) + timedelta(minutes=11)

    async def scenario() -> tuple[int, int, int]:
        config = load_config(project)
        backend = make_backends(config, [Channel.SMS], TWILIO_ENV)[Channel.SMS]
        assert isinstance(backend, TwilioSms)
        async with project_ledger(project) as ledger:
            reports = TwilioReports(ledger, config.receipts.sms, config.retry, "secret",
                                    DeliveryTokens.of(config), lambda: later, lambda: 0.5)
            polling = TwilioPoller(reports, backend, _no_wait)
            first = await polling.poll_once()
            again = await polling.poll_once()
            fake.throttled = True
            reports.clock = lambda: later + timedelta(minutes=20)
            with pytest.raises(UnavailableError):
                await polling.poll_once()
            fake.throttled = False
            third = await polling.poll_once()
            await backend.close()
            return first, again, third

    first, again, third = asyncio.run(scenario())
    assert (first, again, third) == (4, 0, 1)  # only the one still "sent" is asked again
    states = {d.address: (d.state, d.error_code) for d in asyncio.run(deliveries(project))}
    assert states == {number(0): ("delivered", None), number(1): ("pending", "30003"),
                      number(2): ("undelivered", "30007"), number(3): ("sent", None)}
    assert json.loads(cli("status", "3", "--json", "-c", str(project)).out
                      )["notices"][0]["state"] == "sending"


async def _no_wait(_: float) -> None:
    return None


def test_a_callback_for_a_delivery_not_in_the_ledger_changes_nothing(
        project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    from twilio.request_validator import RequestValidator

    async def scenario() -> Applied | None:
        config = load_config(project)
        async with project_ledger(project) as ledger:
            tokens = DeliveryTokens.of(config)
            reports = TwilioReports(ledger, config.receipts.sms, config.retry, "secret",
                                    tokens, lambda: datetime.now(UTC))
            token = tokens.callback(99)
            url = f"https://dispatcher.example.jp/twilio/status/{token}"
            params = {"MessageSid": "SM1", "MessageStatus": "undelivered"}
            signature = RequestValidator("secret").compute_signature(url, params)
            return await reports.callback(url, params, signature, token)

    assert asyncio.run(scenario()) is Applied.UNKNOWN
