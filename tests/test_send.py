"""`dispatcher send`, `status` and `retry` against a real SMTP server and a Twilio-speaking one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import ClassVar

import pytest

from dispatcher.demo import free_port
from dispatcher.ledger import engine_url
from dispatcher.send import Backend, Outgoing, Receipt, SendingRun, send_notice
from dispatcher.table import Channel, Phase, build_notice, find_window, load_inputs
from tests.helpers import (
    FAST_RETRY,
    Cli,
    configure,
    deliveries,
    project_ledger,
    real_channels,
    use_contacts,
)
from tests.servers import FakeTwilio, SmtpSink, fresh_schema, smtp_server


def status_json(cli: Cli, project: Path) -> dict[str, object]:
    result = cli("status", "3", "--json", "-c", str(project))
    assert result.code == 0, result.err
    data: dict[str, object] = json.loads(result.out)
    return data


def test_send_reaches_every_contact_once_on_every_channel(
        cli: Cli, project: Path, smtp: tuple[SmtpSink, int],
        twilio: tuple[FakeTwilio, str]) -> None:
    sink, port = smtp
    fake, url = twilio
    configure(project, real_channels(port, url))
    result = cli("send", "3", "start", "--yes", "-c", str(project))
    assert result.code == 0, result.err + result.out
    recipients = sink.recipients()
    emails = [r for r in recipients if not r.endswith("@fax.example.jp")]
    faxes = [r for r in recipients if r.endswith("@fax.example.jp")]
    assert (len(emails), len(set(emails))) == (28, 28)
    assert (len(faxes), len(set(faxes))) == (27, 27)
    assert "0355511037@fax.example.jp" in faxes
    assert len({m["To"] for m in fake.accepted}) == len(fake.accepted) == 26
    assert all(m["From"] == "+815012345678" for m in fake.accepted)
    fax_mail = next(a.content for a in sink.arrivals()
                    if a.recipients == ("0355511037@fax.example.jp",))
    gateway_mail = message_from_bytes(fax_mail, policy=policy.default)
    pdf = next(gateway_mail.iter_attachments())
    assert (pdf.get_content_type(), pdf.get_filename()) == ("application/pdf", "notice.pdf")
    assert pdf.get_content().startswith(b"%PDF")
    assert str(gateway_mail["Subject"]).startswith("FAX ")

    again = cli("send", "3", "start", "--yes", "-c", str(project))
    assert again.code == 0
    assert "nothing new to send" in again.out
    assert len(sink) == 55 and len(fake.accepted) == 26

    [notice] = status_json(cli, project)["notices"]  # type: ignore[misc]
    assert notice["total"] == 81 and notice["state"] == "done"
    assert notice["channels"] == {"email": {"sent": 28}, "fax": {"sent": 27},
                                  "sms": {"sent": 26}}


def test_message_ids_are_deterministic_and_smtp_queue_ids_are_kept(
        cli: Cli, project: Path, smtp: tuple[SmtpSink, int],
        twilio: tuple[FakeTwilio, str]) -> None:
    sink, port = smtp
    configure(project, real_channels(port, twilio[1]))
    assert cli("send", "3", "end", "--channel", "email", "--yes", "-c", str(project)).code == 0
    ids = [line for a in sink.arrivals() for line in a.content.decode().splitlines()
           if line.lower().startswith("message-id:")]
    assert len(ids) == 28 and len(set(ids)) == 28
    assert all(i.endswith("@j-mups.example.jp>") for i in ids)
    records = asyncio.run(deliveries(project))
    assert all(r.provider_ref and r.provider_ref.startswith("2.0.0 Ok: queued as Q")
               for r in records)


def test_smtp_temporary_failures_are_retried_and_5xx_is_final(
        cli: Cli, project: Path, smtp: tuple[SmtpSink, int],
        twilio: tuple[FakeTwilio, str]) -> None:
    sink, port = smtp
    configure(project, real_channels(port, twilio[1]), FAST_RETRY)
    use_contacts(project, "A,店A,,,tempfail-a@example.jp,,emoney\n"
                          "B,店B,,,reject-b@example.jp,,emoney\n"
                          "C,店C,,,dropdata-c@example.jp,,emoney\n"
                          "D,店D,,,ok-d@example.jp,,emoney\n")
    result = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
    assert result.code == 1
    assert sorted(sink.recipients()) == ["dropdata-c@example.jp", "ok-d@example.jp",
                                         "tempfail-a@example.jp"]
    by_contact = {r.contact_id: r for r in asyncio.run(deliveries(project))}
    assert (by_contact["A"].state, by_contact["A"].attempts) == ("sent", 2)
    assert (by_contact["C"].state, by_contact["C"].attempts) == ("sent", 2)
    assert (by_contact["B"].state, by_contact["B"].error_code) == ("failed", "550")
    [notice] = status_json(cli, project)["notices"]  # type: ignore[misc]
    assert notice["failures"] == [{
        "contact": "B", "channel": "email", "address": "reject-b@example.jp",
        "state": "failed", "error_code": "550", "reason": "550 5.1.1 no such user",
        "attempts": 1}]
    text = cli("status", "3", "-c", str(project)).out
    assert "failed: email B reject-b@example.jp: 550 5.1.1 no such user" in text


def test_twilio_answers_map_to_retry_failure_and_uncertain(
        cli: Cli, project: Path, smtp: tuple[SmtpSink, int],
        twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    configure(project, real_channels(smtp[1], url), FAST_RETRY)
    use_contacts(project, "A,店A,,,,090-1234-0429,emoney\n"
                          "B,店B,,,,090-1234-1211,emoney\n"
                          "C,店C,,,,090-1234-0500,emoney\n"
                          "D,店D,,,,090-1234-5678,emoney\n")
    result = cli("send", "3", "start", "--channel", "sms", "--yes", "-c", str(project))
    assert result.code == 1
    assert sorted(m["To"] for m in fake.accepted) == ["+819012340429", "+819012345678"]
    by_contact = {r.contact_id: r for r in asyncio.run(deliveries(project))}
    # A 429 is about the account, not the message: it pauses the channel and is not counted
    assert (by_contact["A"].state, by_contact["A"].attempts) == ("sent", 1)
    assert by_contact["A"].provider_ref and by_contact["A"].provider_ref.startswith("SM")
    assert (by_contact["B"].state, by_contact["B"].error_code) == ("failed", "21211")
    assert (by_contact["C"].state, by_contact["C"].attempts) == ("uncertain", 1)
    assert fake.requests == 5, "the 500 must not be retried blindly"


def test_retry_resends_failed_deliveries_once_the_server_is_back(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    port = free_port()
    # Nobody listens: the channel probes until the notice stops mattering (here, soon).
    configure(project, real_channels(port, twilio[1]),
              FAST_RETRY + "give_up_after_minutes = 0.02\n")
    use_contacts(project, "A,店A,,,a@example.jp,,emoney\nB,店B,,,b@example.jp,,emoney\n")
    down = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
    assert down.code == 1
    assert "expired: email A a@example.jp: gave up after 0.02 minutes" in down.out
    assert {(r.state, r.attempts) for r in asyncio.run(deliveries(project))} == {("expired", 0)}
    with smtp_server(port=port) as (sink, _, _):
        again = cli("retry", "3", "start", "-c", str(project))
    assert again.code == 0, again.out + again.err
    assert sorted(sink.recipients()) == ["a@example.jp", "b@example.jp"]
    actions = asyncio.run(_audit(project))
    assert [a["action"] for a in actions] == ["send", "retry"]


async def _audit(project: Path) -> list[dict[str, object]]:
    async with project_ledger(project) as ledger:
        return await ledger.audit_entries("2021-07-19-emoney")


def test_starttls_with_a_self_signed_certificate(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    with smtp_server(tls=True) as (sink, port, ca_file):
        channels = real_channels(port, twilio[1]).replace(
            'security = "none"', f'security = "starttls"\nca_file = "{ca_file}"')
        configure(project, channels)
        result = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
    assert result.code == 0, result.out + result.err
    assert len(sink.recipients()) == 28


def test_starttls_refuses_an_untrusted_certificate(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    with smtp_server(tls=True) as (sink, port, _):
        channels = real_channels(port, twilio[1]).replace('security = "none"',
                                                          'security = "starttls"')
        configure(project, channels, FAST_RETRY.replace("max_attempts = 3", "max_attempts = 1"))
        result = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
    assert result.code == 1
    assert sink.recipients() == []
    assert "CERTIFICATE_VERIFY_FAILED" in result.out


def test_without_yes_and_without_a_terminal_nothing_is_sent(cli: Cli, project: Path) -> None:
    result = cli("send", "3", "start", "-c", str(project))
    assert result.code == 2
    assert "standard input is not a terminal" in result.err
    assert not (project.parent / "var" / "outbox").exists()


def test_dry_run_sends_nothing(cli: Cli, project: Path) -> None:
    result = cli("send", "3", "start", "--dry-run", "-c", str(project))
    assert result.code == 0
    assert "email: 28 recipients, 1 without an address" in result.out
    assert "dry run: nothing was sent" in result.out
    assert not (project.parent / "var").exists()  # nor a ledger made to be read


def test_missing_twilio_credentials_stop_before_anything_is_sent(
        cli: Cli, project: Path, smtp: tuple[SmtpSink, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    configure(project, real_channels(smtp[1], "http://127.0.0.1:9"))
    result = cli("send", "3", "start", "--yes", "-c", str(project))
    assert result.code == 2
    assert "environment variable TWILIO_ACCOUNT_SID is not set" in result.err
    assert smtp[0].recipients() == []
    assert asyncio.run(deliveries(project)) == []


def test_template_error_stops_before_anything_is_sent(cli: Cli, project: Path) -> None:
    (project.parent / "templates" / "sms" / "start.txt.j2").write_text("{{ nope }}\n")
    result = cli("send", "3", "start", "--yes", "-c", str(project))
    assert result.code == 2
    assert "sms/start.txt.j2:1: unknown variable" in result.err
    assert asyncio.run(deliveries(project)) == []


@pytest.mark.parametrize(("args", "message"), [
    (("1", "start"), "window 1 is not broadcast"),
    (("3", "start", "--channel", "email", "--channel", "sms"), None),
])
def test_send_arguments(cli: Cli, project: Path, args: tuple[str, ...],
                        message: str | None) -> None:
    result = cli("send", *args, "--yes", "-c", str(project))
    if message is None:
        assert result.code == 0, result.err
        assert "│ email " in result.out and "│ sms " in result.out
        assert "│ fax " not in result.out
    else:
        assert result.code == 2 and message in result.err


def test_send_with_a_postgresql_ledger(cli: Cli, project: Path, postgres_url: str,
                                       smtp: tuple[SmtpSink, int],
                                       twilio: tuple[FakeTwilio, str]) -> None:
    asyncio.run(fresh_schema(engine_url(postgres_url, project.parent)))
    text = project.read_text(encoding="utf-8").replace(
        'ledger = "sqlite:///var/ledger.sqlite3"', f'ledger = "{postgres_url}"')
    project.write_text(text, encoding="utf-8")
    configure(project, real_channels(smtp[1], twilio[1]))
    assert cli("send", "3", "start", "--yes", "-c", str(project)).code == 0
    again = cli("send", "3", "start", "--yes", "-c", str(project))
    assert "nothing new to send" in again.out
    assert len(smtp[0]) == 55 and len(twilio[0].accepted) == 26
    assert not (project.parent / "var" / "ledger.sqlite3").exists()
    [notice] = status_json(cli, project)["notices"]  # type: ignore[misc]
    assert notice["total"] == 81 and notice["state"] == "done"


class _BuggyBackend(Backend):
    """A backend with a bug of its own (an SDK raising what nobody mapped): the fault this
    test injects at the plugin boundary; the dispatcher, ledger and rendering are real."""

    name: ClassVar[str] = "buggy"

    async def send(self, outgoing: Outgoing) -> Receipt:
        if outgoing.message.contact.id.endswith("1"):
            raise RuntimeError("unexpected answer")
        return Receipt(f"ok-{outgoing.delivery_id}")


async def test_a_backends_own_bug_makes_deliveries_uncertain_not_a_hang(project: Path) -> None:
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    notice = build_notice(window, window.planned, Phase.START)
    async with project_ledger(project) as ledger:
        sending = SendingRun(inputs, ledger, {Channel.EMAIL: _BuggyBackend()},
                             lambda: datetime.now(UTC))
        result = await asyncio.wait_for(
            send_notice(sending, notice, [Channel.EMAIL], "test"), timeout=600)
    records = await deliveries(project)
    buggy = [r for r in records if r.contact_id.endswith("1")]
    assert buggy and {(r.state, r.error_code) for r in buggy} == {("uncertain", "internal")}
    assert {r.last_error for r in buggy} == {"RuntimeError: unexpected answer"}
    assert {r.state for r in records if r not in buggy} == {"sent"}
    assert result.counts[("email", "uncertain")] == len(buggy)


def test_every_message_says_it_was_sent_automatically_in_lines_of_78(
        cli: Cli, project: Path, smtp: tuple[SmtpSink, int],
        twilio: tuple[FakeTwilio, str]) -> None:
    # RFC 3834: auto-replies (out-of-office) are then not sent back to a send-only address
    sink, port = smtp
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('hours = "365 日 24 時間"\n', 'hours = "365 日 24 時間"\n'
                                    'email = "help@j-mups.example.jp"\n'), encoding="utf-8")
    configure(project, real_channels(port, twilio[1]))
    sent = cli("send", "3", "start", "--channel", "email", "--channel", "fax", "--yes",
               "-c", str(project))
    assert sent.code == 0, sent.err
    mails = [message_from_bytes(a.content) for a in sink.arrivals()]
    faxes = [m for m in mails if m["To"].endswith("@fax.example.jp")]
    assert len(mails) == 55 and len(faxes) == 27
    assert {m["Auto-Submitted"] for m in mails} == {"auto-generated"}
    assert {m["Date"][-5:] for m in mails} == {"+0900"}  # [dispatcher] timezone's time
    heads = [a.content.split(b"\r\n\r\n")[0].split(b"\r\n") for a in sink.arrivals()]
    assert max(len(line) for head in heads for line in head) <= 78
    assert {str(message_from_bytes(a.content, policy=policy.default)["Reply-To"])
            for a in sink.arrivals() if b"@fax.example.jp" not in a.content} == {
        "J-Mups ヘルプデスク <help@j-mups.example.jp>"}
