"""Returned mail: the real bounce corpus read as Sisimai reads it (mostly), each delivery's
own signed return path, and `receipts read-mail` turning bounces sent back to a real SMTP
round trip into ledger states."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aioimaplib
import pytest

from dispatcher.ledger import Ledger
from dispatcher.receipts import (
    ImapAccount,
    ImapIntake,
    MailKind,
    MailMatcher,
    MailReading,
    read_bounce,
)
from dispatcher.send import DeliveryTokens
from dispatcher.table import load_config
from tests.helpers import (
    ROOT,
    Cli,
    configure,
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
from tests.servers import dovecot_server, dsn_smtp_server

BOUNCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "bounces"
RECEIPTS = """
[receipts.email]
bounce_address = "bounces+{token}@j-mups.example.jp"
"""


def corpus() -> dict[str, dict[str, object]]:
    expected: dict[str, dict[str, object]] = json.loads(
        (BOUNCES / "EXPECTED.json").read_text())["files"]
    return expected


@pytest.mark.skipif(not BOUNCES.is_dir(), reason="the shared bounce corpus is not here")
def test_the_real_bounce_corpus_reads_as_sisimai_reads_it_for_nine_in_ten() -> None:
    kinds = addresses = recipients = 0
    files = corpus()
    for name, expected in files.items():
        reading = read_bounce((BOUNCES / name).read_bytes())
        kinds += reading.kind == expected["kind"]
        found = {r.address for r in reading.recipients}
        wanted = [str(r["address"]).lower() for r in expected["recipients"]]  # type: ignore[attr-defined]
        recipients += len(wanted)
        addresses += sum(address in found for address in wanted)
    assert kinds / len(files) >= 0.9, f"kind right for {kinds} of {len(files)}"
    assert addresses / recipients >= 0.9, f"{addresses} of {recipients} recipients found"


@pytest.mark.skipif(not BOUNCES.is_dir(), reason="the shared bounce corpus is not here")
def test_the_addresses_it_calls_dead_are_the_ones_sisimai_does() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "receipts.py"), "--corpus",
                           str(BOUNCES), "--json"], capture_output=True, text=True, cwd=ROOT,
                          check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    ours = json.loads(done.stdout)["dispatcher"]
    assert ours["kind"] >= 0.9 and ours["hard_soft"] >= 0.8, ours
    assert ours["soft_among_suppressed"] <= 0.02, ours  # a live merchant is not dropped


@pytest.mark.skipif(not BOUNCES.is_dir(), reason="the shared bounce corpus is not here")
@pytest.mark.parametrize(("name", "kind", "status", "hard"), [
    ("rfc3464-01.eml", MailKind.BOUNCE, "5.1.1", True),
    ("lhost-sendmail-03.eml", MailKind.BOUNCE, "5.1.1", True),
    ("rfc3464-07.eml", MailKind.DELAY, None, False),
    ("arf-01.eml", MailKind.NOT_A_BOUNCE, None, False),
])
def test_each_kind_of_returned_mail(name: str, kind: MailKind, status: str | None,
                                    hard: bool) -> None:
    reading = read_bounce((BOUNCES / name).read_bytes())
    assert reading.kind is kind
    if status is not None:
        assert [(r.status, r.hard) for r in reading.recipients] == [(status, hard)]
    assert not any(r.hard for r in reading.recipients) or kind is MailKind.BOUNCE


JAPANESE_CARRIERS = ("lhost-ezweb-", "lhost-kddi-", "rhost-nttdocomo-", "lhost-biglobe-",
                     "lhost-au-", "lhost-docomo-", "lhost-softbank-")


@pytest.mark.skipif(not BOUNCES.is_dir(), reason="the shared bounce corpus is not here")
def test_every_japanese_carrier_bounce_is_read_as_a_bounce_of_its_recipient() -> None:
    """Merchants register au, KDDI and docomo addresses; a report from those mail systems
    (no status code, a bracketed address, 8-bit UTF-8 headers) must not count as reached."""
    carriers = {name: expected for name, expected in corpus().items()
                if name.startswith(JAPANESE_CARRIERS)}
    assert len(carriers) >= 14
    read = {}
    for name, expected in carriers.items():
        reading = read_bounce((BOUNCES / name).read_bytes())
        wanted = {str(r["address"]).lower() for r in expected["recipients"]}  # type: ignore[attr-defined]
        read[name] = (reading.kind.value, wanted <= {r.address for r in reading.recipients})
    assert read == {name: (str(e["kind"]), True) for name, e in carriers.items()}


def test_bounces_of_a_real_send_mark_exactly_their_deliveries(
        cli: Cli, project: Path, tmp_path: Path, twilio: tuple[object, str]) -> None:
    use_contacts(project, "".join(f"M{n},加盟店{n},担当{n},,user{n}@shop.example.jp,,emoney\n"
                                  for n in range(6)))
    with dsn_smtp_server() as (sink, port):
        configure(project, real_channels(port, twilio[1]) + RECEIPTS)
        sent = cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project))
        assert sent.code == 0, sent.err
    arrivals = sorted(sink.arrivals(), key=lambda a: a.recipients[0])
    assert len({a.sender for a in arrivals}) == 6
    assert all(a.sender.startswith("bounces+") for a in arrivals)
    assert all({"RET=HDRS", "NOTIFY=SUCCESS,FAILURE,DELAY"} <= set(a.options)
               for a in arrivals)
    forged_to = arrivals[3].sender.replace("bounces+", "bounces+9").replace("-", "-0", 1)
    returned = maildir(tmp_path / "bounces", [
        dsn(arrivals[0], "failed", "5.1.1"),                 # by its VERP token
        dsn(arrivals[1], "failed", "5.2.1", to="postmaster@j-mups.example.jp",
            envid=True),                                     # by the DSN's ENVID
        dsn(arrivals[2], "delayed", "4.4.7"),                # a delay: stays sent
        dsn(arrivals[3], "failed", "5.1.1", to=forged_to),   # forged token: nothing
        dsn(arrivals[4], "delivered", "2.0.0"),              # success DSN
    ])
    dry = cli("receipts", "read-mail", str(returned), "--json", "-c", str(project))
    assert dry.code == 0, dry.err
    lines = [json.loads(line) for line in dry.out.splitlines()]
    assert [line["kind"] for line in lines].count("bounce") == 3
    assert notice_channels(cli, project) == {"email": {"sent": 6}}

    applied = cli("receipts", "read-mail", str(returned), "--apply", "-c", str(project))
    assert applied.code == 0, applied.err
    assert "1 with a forged token (moving nothing)" in applied.out
    assert notice_channels(cli, project) == {"email": {"bounced": 2, "delivered": 1, "sent": 3}}
    again = cli("receipts", "read-mail", str(returned), "--apply", "-c", str(project))
    assert "4 duplicate" in again.out
    assert notice_channels(cli, project) == {"email": {"bounced": 2, "delivered": 1, "sent": 3}}

    bounced = [a.recipients[0] for a in arrivals[:2]]
    within_grace = unreached(cli, project)
    assert within_grace["unreached"] == 5 and within_grace["audience"] == 6
    assert within_grace["waiting"] == 3  # sent, within the grace period: may still arrive
    shown = cli("unreached", "3", "start", "-c", str(project)).out
    assert "3 of them waiting: sent within the grace period" in shown
    header = next(line for line in shown.splitlines() if "contact" in line and "phones" in line)
    assert "waiting" in header and "email" in header
    assert "reached" not in header and "steps" not in header and "voice" not in header
    after_grace = unreached(cli, project, "--now", "2099-01-01T00:00:00+09:00", "--csv",
                            str(tmp_path / "call.csv"))
    assert [c["channels"]["email"]["address"] for c in after_grace["contacts"]] == bounced
    assert [c["channels"]["email"]["state"] for c in after_grace["contacts"]] == ["bounced"] * 2
    rows = (tmp_path / "call.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("contact,merchant,name,phones") and len(rows) == 3
    assert (tmp_path / "call.csv").stat().st_mode & 0o777 == 0o600  # contact data


def unreached(cli: Cli, project: Path, *args: str) -> dict[str, Any]:
    result = cli("unreached", "3", "start", "--json", "-c", str(project), *args)
    assert result.code == 0, result.err
    report: dict[str, Any] = json.loads(result.out)
    return report


def test_a_bounce_naming_only_the_message_id_is_matched(
        cli: Cli, project: Path, tmp_path: Path, smtp: tuple[object, int],
        twilio: tuple[object, str]) -> None:
    sink, port = smtp
    use_contacts(project, "M1,加盟店,担当,,gone@shop.example.jp,,emoney\n")
    configure(project, real_channels(port, twilio[1]))
    assert cli("send", "3", "start", "--channel", "email", "--yes", "-c",
               str(project)).code == 0
    [arrival] = sink.arrivals()  # type: ignore[attr-defined]
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@mx.example.jp"
    bounce["To"] = "maintenance@j-mups.example.jp"
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce.set_content("This is the mail system at host mx.example.jp.\n\n"
                       "<gone@shop.example.jp>: host mx.shop.example.jp said: 550 5.1.1 "
                       "<gone@shop.example.jp>: Recipient address rejected: User unknown\n\n"
                       + arrival.content.split(b"\r\n\r\n")[0].decode("ascii"))
    path = tmp_path / "bounce.eml"
    path.write_bytes(bounce.as_bytes())
    result = cli("receipts", "read-mail", str(path), "--apply", "--json", "-c", str(project))
    assert result.code == 0, result.err
    [line] = [json.loads(text) for text in result.out.splitlines()]
    assert (line["matched_by"], line["state"]) == ("message-id", "bounced")
    assert notice_channels(cli, project) == {"email": {"bounced": 1}}


def test_read_mail_refuses_a_path_that_is_not_there(cli: Cli, project: Path) -> None:
    result = cli("receipts", "read-mail", "no-such.eml", "-c", str(project))
    assert result.code == 2
    assert "no-such.eml: no such file or folder" in result.err


def test_the_bounce_mailbox_is_read_over_imap_and_what_was_recorded_is_moved(
        cli: Cli, project: Path, twilio: tuple[object, str]) -> None:
    use_contacts(project, "".join(f"M{n},加盟店{n},担当{n},,user{n}@shop.example.jp,,emoney\n"
                                  for n in range(3)))
    with dsn_smtp_server() as (sink, port):
        configure(project, real_channels(port, twilio[1]) + RECEIPTS)
        assert cli("send", "3", "start", "--channel", "email", "--yes", "-c",
                   str(project)).code == 0
    arrivals = sorted(sink.arrivals(), key=lambda a: a.recipients[0])
    forged = arrivals[1].sender.replace("bounces+", "bounces+7")
    mails = [dsn(arrivals[0], "failed", "5.1.1"), dsn(arrivals[1], "failed", "5.1.1", to=forged),
             dsn(arrivals[2], "delayed", "4.4.7")]
    if BOUNCES.is_dir():
        mails.append((BOUNCES / "arf-01.eml").read_bytes())  # a complaint, not a bounce

    async def scenario(imap_port: int) -> tuple[list[int], list[int], int, int, int]:
        async with project_ledger(project) as ledger:
            intake = bounce_intake(project, ledger, imap_port)
            client = await imap_login(imap_port)
            for raw in mails:
                await client.append(raw, mailbox="INBOX")
            await client.logout()
            first = await intake.poll_once()
            again = await intake.poll_once()
            client = await imap_login(imap_port)
            counts = [await _messages(client, folder)
                      for folder in ("INBOX", "dispatcher-processed")]
            await client.logout()
            kept = len(await ledger.forged())
        inbox, processed = counts
        return ([first["recorded"], first["forged"], first["left"]],
                [again["recorded"], again["forged"], again["left"]], inbox, processed, kept)

    with dovecot_server() as (imap_port, _):
        first, again, inbox, processed, forged_kept = asyncio.run(scenario(imap_port))
    # the forged bounce is kept in the ledger (forged_reports) and moved out of the inbox
    assert first == [2, 1, len(mails) - 3] and again == [0, 0, 0]
    assert (inbox, processed, forged_kept) == (len(mails) - 3, 3, 1)
    assert notice_channels(cli, project) == {"email": {"bounced": 1, "sent": 2}}


@pytest.mark.parametrize(("capabilities", "flagged_left"), [
    ("IMAP4rev1 LITERAL+ IDLE UIDPLUS", 0),  # no MOVE: COPY, then UID EXPUNGE of that one
    ("IMAP4rev1 LITERAL+ IDLE", 1),          # neither: COPY, flagged and left, not read again
])
def test_unrelated_deleted_mail_survives_a_read_of_the_bounce_mailbox(
        cli: Cli, project: Path, twilio: tuple[object, str], capabilities: str,
        flagged_left: int) -> None:
    use_contacts(project, "M1,加盟店1,担当1,,user1@shop.example.jp,,emoney\n")
    with dsn_smtp_server() as (sink, port):
        configure(project, real_channels(port, twilio[1]) + RECEIPTS)
        assert cli("send", "3", "start", "--channel", "email", "--yes", "-c",
                   str(project)).code == 0
    [arrival] = sink.arrivals()
    someone_elses = EmailMessage()
    someone_elses["From"], someone_elses["Subject"] = "ops@j-mups.example.jp", "会議メモ"
    someone_elses.set_content("another program's mail, marked for deletion by it\n")

    async def scenario(imap_port: int) -> tuple[list[int], dict[str, int], int]:
        async with project_ledger(project) as ledger:
            intake = bounce_intake(project, ledger, imap_port)
            client = await imap_login(imap_port)
            await client.append(someone_elses.as_bytes(), mailbox="INBOX", flags=r"(\Deleted)")
            await client.append(dsn(arrival, "failed", "5.1.1"), mailbox="INBOX")
            await client.logout()
            recorded = [(await intake.poll_once())["recorded"] for _ in range(2)]
            client = await imap_login(imap_port)
            counts = {folder: await _messages(client, folder)
                      for folder in ("INBOX", "dispatcher-processed")}
            await _ok_select(client, "INBOX")
            deleted = await client.search("DELETED")
            await client.logout()
        return recorded, counts, sum(word.isdigit() for line in deleted.lines[:-1]
                                     for word in line.split())

    with dovecot_server(capabilities=capabilities) as (imap_port, _):
        recorded, counts, deleted = asyncio.run(scenario(imap_port))
    assert recorded == [1, 0]
    assert counts == {"INBOX": 1 + flagged_left, "dispatcher-processed": 1}
    assert deleted == 1 + flagged_left  # someone else's, still there
    assert notice_channels(cli, project) == {"email": {"bounced": 1}}


async def _messages(client: aioimaplib.IMAP4, folder: str) -> int:
    status = await client.status(folder, "(MESSAGES)")
    return int(status.lines[0].split(b"MESSAGES ")[1].rstrip(b")"))


async def _ok_select(client: aioimaplib.IMAP4, folder: str) -> None:
    assert (await client.select(folder)).result == "OK"


def bounce_intake(project: Path, ledger: Ledger, imap_port: int) -> ImapIntake:
    """The bounce mailbox on the test's Dovecot, read into the project's ledger."""
    config = load_config(project)
    account = ImapAccount("127.0.0.1", imap_port, False, "INBOX", "bounces", "secret")
    return ImapIntake(account, MailMatcher(ledger, config, DeliveryTokens.of(config)),
                      "dispatcher-processed", lambda: datetime.now(UTC))


async def imap_login(port: int) -> aioimaplib.IMAP4:
    client = aioimaplib.IMAP4(host="127.0.0.1", port=port, timeout=60)
    await client.wait_hello_from_server()
    assert (await client.login("bounces", "secret")).result == "OK"
    return client


def test_a_fax_gateways_result_mails_settle_the_faxes_by_what_happened_on_the_line(
        cli: Cli, project: Path, tmp_path: Path, twilio: tuple[object, str]) -> None:
    use_contacts(project, "".join(f"M{n},加盟店{n},担当{n},03-1234-560{n},,,emoney\n"
                                  for n in range(1, 6)))
    gateway = RECEIPTS + """
[receipts.fax_gateway]
delivered_pattern = "送信完了|Status: *OK"
failed_pattern = "送信失敗|Status: *FAILED"
"""
    with dsn_smtp_server() as (sink, port):
        configure(project, real_channels(port, twilio[1]) + gateway)
        assert cli("send", "3", "start", "--channel", "fax", "--yes", "-c",
                   str(project)).code == 0
    arrivals = sorted(sink.arrivals(), key=lambda a: a.recipients[0])
    assert [a.recipients[0] for a in arrivals] == [f"031234560{n}@fax.example.jp"
                                                   for n in range(1, 6)]

    def result_mail(return_path: str, subject: str, body: str) -> bytes:
        mail = EmailMessage()
        mail["From"] = "FAX Gateway <noreply@fax.example.jp>"
        mail["To"] = return_path
        mail["Subject"] = subject
        mail.set_content(body)
        return mail.as_bytes()

    folder = maildir(tmp_path / "results", [
        result_mail(arrivals[0].sender, "FAX送信結果 0312345601", "送信完了 1/1 ページ\n"),
        result_mail(arrivals[1].sender, "FAX送信結果 0312345602", "送信失敗: 話中 (3 回)\n"),
        result_mail(arrivals[2].sender, "FAX送信結果 0312345603", "受付しました\n"),
        result_mail(arrivals[3].sender, "FAX送信結果 0312345604",
                    "送信失敗: 電話の可能性あり\n"),
        result_mail(arrivals[4].sender, "FAX送信結果 0312345605",
                    "送信失敗: この番号は現在使われておりません\n"),
    ])
    result = cli("receipts", "read-mail", str(folder), "--apply", "--json", "-c", str(project))
    assert result.code == 0, result.err
    states = [json.loads(line)["state"] for line in result.out.splitlines()]
    # busy: faxed again after the backoff; a voice answered: not faxed again (the help
    # desk's list and the escalation take it up); not in service: to be corrected
    assert states == ["delivered", "pending", None, "undelivered", "undelivered"]
    assert notice_channels(cli, project) == {
        "fax": {"delivered": 1, "pending": 1, "sent": 1, "undelivered": 2}}
    listed = json.loads(cli("suppress", "list", "--json", "-c", str(project)).out)
    assert [(e["channel"], e["address"], e["contacts"]) for e in listed] == [
        ("fax", "+81312345605", ["M5"])]


def test_the_daemon_reads_the_bounce_mailbox(
        cli: Cli, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        twilio: tuple[object, str]) -> None:
    monkeypatch.setenv("DISPATCHER_IMAP_USER", "bounces")
    monkeypatch.setenv("DISPATCHER_IMAP_PASSWORD", "secret")
    use_contacts(project, "M1,加盟店1,担当1,,gone@shop.example.jp,,emoney\n")
    with dovecot_server() as (imap_port, _), dsn_smtp_server() as (sink, port):
        mailbox_settings = (f'imap_url = "imap://127.0.0.1:{imap_port}/INBOX"\n'
                            "allow_plaintext = true\n"
                            "poll_seconds = 0.2\n")
        configure(project, real_channels(port, twilio[1]) + RECEIPTS + mailbox_settings)
        assert cli("send", "3", "start", "--channel", "email", "--yes", "-c",
                   str(project)).code == 0
        [arrival] = sink.arrivals()

        async def deliver_bounce() -> None:
            client = await imap_login(imap_port)
            await client.append(dsn(arrival, "failed", "5.1.1"), mailbox="INBOX")
            await client.logout()

        asyncio.run(deliver_bounce())
        log = tmp_path / "daemon.log"
        daemon = start_daemon(project, log)
        try:
            wait_for(lambda: "bounced" in notice_channels(cli, project).get("email", {}), 120,
                     "the bounce read from the mailbox")
        finally:
            output = stop(daemon, log)
    assert "bounce mailbox read" in output
    assert notice_channels(cli, project) == {"email": {"bounced": 1}}


def test_a_mail_nothing_can_read_is_not_a_bounce(cli: Cli, project: Path, tmp_path: Path
                                                 ) -> None:
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\xff\xfe\x00 not a mail \x00" * 50)
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = cli("receipts", "read-mail", str(garbage), str(empty), "--json", "-c",
                 str(project))
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [(line["kind"], line["delivery"]) for line in lines] == [("not-a-bounce", None)] * 2


def test_a_long_lived_matcher_that_forgets_matches_what_was_sent_since(
        cli: Cli, project: Path, smtp: tuple[object, int], twilio: tuple[object, str]) -> None:
    sink, port = smtp
    use_contacts(project, "M1,加盟店,担当,,gone@shop.example.jp,,emoney\n")
    configure(project, real_channels(port, twilio[1]))

    def returned(n: int) -> MailReading:
        arrival = sink.arrivals()[n]  # type: ignore[attr-defined]
        ids = [line.split(b":", 1)[1].strip().decode() for line in arrival.content.splitlines()
               if line.lower().startswith(b"message-id:")]
        return MailReading(MailKind.BOUNCE, (), "", None, tuple(ids), "")

    async def matched(matcher: MailMatcher, reading: MailReading) -> str | None:
        found, how, _ = await matcher.match(reading)
        return how if found else None

    async def scenario() -> list[str | None]:
        config = load_config(project)
        async with project_ledger(project) as ledger:
            matcher = MailMatcher(ledger, config, DeliveryTokens.of(config))
            first = await matched(matcher, returned(0))
            sent = await asyncio.to_thread(cli, "send", "3", "end", "--channel", "email",
                                           "--yes", "-c", str(project))
            assert sent.code == 0, sent.err
            stale = await matched(matcher, returned(1))
            matcher.forget()
            return [first, stale, await matched(matcher, returned(1))]

    assert cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project)).code == 0
    assert asyncio.run(scenario()) == ["message-id", None, "message-id"]
