"""The suppression list: a dead address (a hard bounce in Sisimai's sense, of one of our
own deliveries) or a number that replied STOP or 停止 is not sent to again; `check`,
`status` and `suppress list` report it, and `suppress remove` takes it off (audited)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from tests.helpers import (
    TWILIO_ENV,
    Cli,
    configure,
    daemon_with_console,
    dsn,
    maildir,
    project_ledger,
    real_channels,
    use_contacts,
)
from tests.servers import FakeTwilio, dsn_smtp_server

RECEIPTS = '\n[receipts.email]\nbounce_address = "bounces+{token}@j-mups.example.jp"\n'
SIX = "".join(f"M{n},加盟店{n},担当{n},,user{n}@shop.example.jp,090-2000-{1000 + n},emoney\n"
              for n in range(6))


def suppressed(cli: Cli, project: Path) -> list[dict[str, object]]:
    listed = cli("suppress", "list", "--json", "--config", str(project))
    assert listed.code == 0, listed.err
    return list(json.loads(listed.out))


def test_a_dead_address_is_not_sent_to_again_until_it_is_taken_off(
        cli: Cli, project: Path, tmp_path: Path, twilio: tuple[FakeTwilio, str]) -> None:
    use_contacts(project, SIX)
    c = ("--config", str(project))
    with dsn_smtp_server() as (sink, port):
        configure(project, real_channels(port, twilio[1]) + RECEIPTS)
        project.write_text(project.read_text(encoding="utf-8").replace(
            'channels = ["fax", "email", "sms"]', 'channels = ["email"]', 1), encoding="utf-8")
        assert cli("send", "3", "start", "--yes", *c).code == 0
        arrivals = sorted(sink.arrivals(), key=lambda a: a.recipients[0])
        forged_to = arrivals[2].sender.replace("bounces+", "bounces+9").replace("-", "-0", 1)
        returned = maildir(tmp_path / "bounces", [
            dsn(arrivals[0], "failed", "5.1.1"),  # no such user, at RCPT: dead
            dsn(arrivals[1], "failed", "5.2.2"),  # refused, the mailbox is there
            dsn(arrivals[2], "failed", "5.1.1", to=forged_to),  # not ours: nothing
        ])
        assert cli("receipts", "read-mail", str(returned), "--apply", *c).code == 0
        [entry] = suppressed(cli, project)
        assert entry["address"] == "user0@shop.example.jp" and entry["contacts"] == ["M0"]
        assert str(entry["reason"]).startswith("bounce userunknown 5.1.1")
        checked = cli("check", *c)
        assert checked.code == 0 and "user0@shop.example.jp of M0 is suppressed" in checked.out
        before = len(sink.arrivals())
        sent = cli("send", "3", "end", "--yes", *c)
        assert sent.code == 0, sent.err
        assert "1 contacts not sent to, their address is suppressed" in sent.out
        assert sorted(a.recipients[0] for a in sink.arrivals()[before:]) == [
            f"user{n}@shop.example.jp" for n in range(1, 6)]
    status = json.loads(cli("status", "3", "--json", *c).out)
    [end] = [n for n in status["notices"] if n["phase"] == "end"]
    assert end["state"] == "done"  # done without the suppressed address
    assert status["suppressed"] == 1
    refused = cli("suppress", "remove", "nobody@shop.example.jp", *c)
    assert refused.code == 2 and "ADDRESS" in refused.err
    assert cli("suppress", "remove", "USER0@shop.example.jp", *c).code == 0
    assert suppressed(cli, project) == []

    async def audited() -> list[str]:
        async with project_ledger(project) as ledger:
            return [e["action"] for e in await ledger.audit_entries()]

    assert "unsuppress" in asyncio.run(audited())


def _inbound(port: int, number: str, body: str, signed: bool = True) -> int:
    url = f"http://127.0.0.1:{port}/twilio/inbound"
    params = {"MessageSid": "SM1", "AccountSid": "ACtest", "From": number,
              "To": "+815012345678", "Body": body}
    signature = (RequestValidator(TWILIO_ENV["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)
                 if signed else "forged")
    request = urllib.request.Request(url, urlencode(params).encode(), method="POST",
                                     headers={"X-Twilio-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_stop_reply_suppresses_the_number_and_start_lifts_it(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    use_contacts(project, SIX)
    configure(project, real_channels(2525, twilio[1]))
    with daemon_with_console(project) as port:
        assert _inbound(port, "+819020001001", "停止", signed=False) == 403
        assert suppressed(cli, project) == []
        assert _inbound(port, "+819020001001", " 停止 ") == 200
        assert _inbound(port, "+819020001002", "ＳＴＯＰ") == 200  # full-width, as typed
        assert _inbound(port, "+819020001003", "了解しました") == 200  # a reply, no more
        assert sorted(str(e["address"]) for e in suppressed(cli, project)) == [
            "+819020001001", "+819020001002"]
        assert {str(e["reason"]) for e in suppressed(cli, project)} == {"STOP reply"}
        assert _inbound(port, "+819020001002", "START") == 200
        assert [e["contacts"] for e in suppressed(cli, project)] == [["M1"]]
        sent = cli("send", "3", "start", "--channel", "sms", "--yes", "--config", str(project))
        assert sent.code == 0, sent.err
    assert "+819020001001" not in {m["To"] for m in twilio[0].accepted}
    assert len(twilio[0].accepted) == 5
