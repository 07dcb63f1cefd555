"""The deployment's key: every value that links a report back to a delivery is signed
with it, so a report aimed at a delivery by someone without it (a guessed envelope id or
Message-ID, a made-up Twilio callback URL) moves nothing; rotating it keeps the old key
verifying for a while."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twilio.request_validator import RequestValidator

from dispatcher.keys import KeyFile
from dispatcher.ledger import Applied, DeliveryState, ForgedReport
from dispatcher.receipts import TwilioReports
from dispatcher.send import DeliveryTokens
from dispatcher.table import load_config
from tests.helpers import (
    Cli,
    configure,
    deliveries,
    dsn,
    maildir,
    notice_channels,
    project_ledger,
    real_channels,
    use_contacts,
)
from tests.servers import FakeTwilio, dsn_smtp_server

NOW = datetime(2021, 7, 19, 1, tzinfo=UTC)
KEEP = timedelta(days=30)
TAG = "dispatcher-42-0123456789ab"


def tokens_in(folder: Path) -> DeliveryTokens:
    return DeliveryTokens(KeyFile(folder / "secret"), KEEP, "bounces+{token}@example.jp",
                          lambda: NOW)


def test_the_key_file_is_made_once_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "var" / "receipts-secret"
    first = KeyFile(path).keys()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert KeyFile(path).keys() == first
    assert len(first.current) == 32 and first.retired == ()


def test_a_token_names_its_delivery_and_nothing_else_verifies(tmp_path: Path) -> None:
    tokens = tokens_in(tmp_path)
    envelope = tokens.envelope(TAG)
    assert envelope.sender is not None and envelope.sender.startswith("bounces+42-")
    [token] = tokens.tokens_in(f"To: <{envelope.sender}>")
    assert tokens.tag_of(token).tag == TAG
    assert tokens.tag_of_envid(envelope.envid).tag == TAG
    assert tokens.tag_of_envid(envelope.envid.upper()).tag == TAG  # some MTAs upper-case it
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert tokens.tag_of(tampered).forged
    assert tokens_in(tmp_path / "another deployment").tag_of(token).forged
    # the unsigned envelope id of before, or a guessed one: forged, never a delivery
    assert tokens.tag_of_envid(TAG).forged
    assert tokens.tag_of_envid("dispatcher-42-0123456789ab-0123456789abcdef").forged
    assert tokens.tag_of_envid("someone-else's-envid") == tokens.tag_of_envid("")
    assert not tokens.tag_of_envid("someone-else's-envid").forged


def test_the_message_id_is_stable_per_delivery_and_signed(tmp_path: Path) -> None:
    tokens = tokens_in(tmp_path)
    first = tokens.message_id("w/planned/start", "M1", "email", "A <a@j.example.jp>")
    assert first == tokens.message_id("w/planned/start", "M1", "email", "A <a@j.example.jp>")
    assert first != tokens.message_id("w/planned/end", "M1", "email", "A <a@j.example.jp>")
    assert first.startswith("<") and first.endswith("@j.example.jp>")
    unkeyed = hashlib.sha256(b"w/planned/start|M1|email").hexdigest()[:32]
    assert first != f"<{unkeyed}@j.example.jp>"
    assert tokens.message_ids("w/planned/start", "M1", "email", "A <a@j.example.jp>") == [first]


def test_a_retired_key_verifies_for_old_secret_days_then_not(tmp_path: Path) -> None:
    clock = [NOW]
    key_file = KeyFile(tmp_path / "secret")
    tokens = DeliveryTokens(key_file, KEEP, None, lambda: clock[0])
    old_token, old_callback = tokens.token(TAG), tokens.callback(7)
    old_id = tokens.message_id("k", "M1", "email", "a@j.example.jp")
    reader = DeliveryTokens(KeyFile(tmp_path / "secret"), KEEP, None, lambda: clock[0])
    assert reader.tag_of(old_token).tag == TAG  # the reader has loaded the key file

    key_file.rotate(NOW, KEEP)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    new_token = tokens.token(TAG)
    assert new_token != old_token
    assert reader.tag_of(new_token).tag == TAG  # a running reader sees the rotation
    assert reader.tag_of(old_token).tag == TAG
    assert reader.callback_id(old_callback) == 7
    assert reader.message_ids("k", "M1", "email", "a@j.example.jp")[1] == old_id

    clock[0] = NOW + KEEP + timedelta(seconds=1)
    assert reader.tag_of(old_token).forged
    assert reader.callback_id(old_callback) is None
    assert reader.message_ids("k", "M1", "email", "a@j.example.jp") == [
        tokens.message_id("k", "M1", "email", "a@j.example.jp")]
    assert reader.tag_of(new_token).tag == TAG


def test_secret_rotate_from_the_command_line(cli: Cli, project: Path) -> None:
    before = KeyFile(project.parent / "var" / "receipts-secret").keys()
    result = cli("secret", "rotate", "-c", str(project))
    assert result.code == 0, result.err
    assert "1 retired key(s) still verify for 30 days" in result.out
    after = KeyFile(project.parent / "var" / "receipts-secret").keys()
    assert after.current != before.current
    assert [key for key, _ in after.retired] == [before.current]


def test_bounces_with_a_guessed_envid_or_message_id_move_nothing(
        cli: Cli, project: Path, tmp_path: Path, twilio: tuple[FakeTwilio, str]) -> None:
    use_contacts(project, "M1,加盟店1,担当1,,user1@shop.example.jp,,emoney\n"
                          "M2,加盟店2,担当2,,user2@shop.example.jp,,emoney\n")
    with dsn_smtp_server() as (sink, port):
        configure(project, real_channels(port, twilio[1]))  # no VERP: envid and Message-ID
        assert cli("send", "3", "start", "--channel", "email", "--yes", "-c",
                   str(project)).code == 0
    first, second = sorted(sink.arrivals(), key=lambda a: a.recipients[0])
    [envid] = [o.partition("=")[2] for o in first.options if o.startswith("ENVID=")]
    delivery_id = envid.split("-")[1]
    digest = envid.split("-")[2]
    # what an outsider who knows the schedule and the contact ids could compute before
    unkeyed_id = hashlib.sha256(b"2021-07-19-emoney/planned/start|M2|email").hexdigest()[:32]
    guessed_envid = f"dispatcher-{delivery_id}-{digest}-{'0' * 16}"
    genuine_headers = second.content.split(b"\r\n\r\n")[0]
    guessed_headers = b"\r\n".join(
        line if not line.lower().startswith(b"message-id:") else
        f"Message-ID: <{unkeyed_id}@j-mups.example.jp>".encode()
        for line in genuine_headers.split(b"\r\n"))
    forged_first = dsn(first, "failed", "5.1.1", to="postmaster@j-mups.example.jp")
    forged_first = forged_first.replace(b"Reporting-MTA: dns; mx.example.jp\n",
                                        f"Reporting-MTA: dns; mx.example.jp\n"
                                        f"Original-Envelope-Id: {guessed_envid}\n".encode())
    guessed_second = dsn(second, "failed", "5.1.1", to="postmaster@j-mups.example.jp")
    guessed_second = guessed_second.replace(genuine_headers.replace(b"\r\n", b"\n"),
                                            guessed_headers.replace(b"\r\n", b"\n"))
    assert guessed_second != dsn(second, "failed", "5.1.1", to="postmaster@j-mups.example.jp")
    folder = maildir(tmp_path / "forged", [forged_first, guessed_second])
    result = cli("receipts", "read-mail", str(folder), "--apply", "--json", "-c", str(project))
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [(line["delivery"], line["forged"]) for line in lines] == [(None, True),
                                                                       (None, False)]
    assert notice_channels(cli, project) == {"email": {"sent": 2}}
    [kept] = asyncio.run(forged_reports(project))
    assert (kept.source, kept.claimed) == ("mail-file", guessed_envid)
    listed = cli("receipts", "forged", "-c", str(project))
    assert f"mail-file: {guessed_envid} (bounce: user1@shop.example.jp 5.1.1)" in listed.out
    assert "1 forged report(s) kept; none changed a delivery" in listed.out
    genuine = maildir(tmp_path / "genuine", [
        dsn(second, "failed", "5.1.1", to="postmaster@j-mups.example.jp")])
    result = cli("receipts", "read-mail", str(genuine), "--apply", "--json", "-c", str(project))
    assert json.loads(result.out)["matched_by"] == "message-id"
    assert notice_channels(cli, project) == {"email": {"bounced": 1, "sent": 1}}


def test_a_made_up_callback_url_or_a_stale_sid_moves_nothing(
        cli: Cli, project: Path, twilio: tuple[FakeTwilio, str]) -> None:
    url = twilio[1]
    use_contacts(project, "M1,加盟店1,担当1,,,090-5555-0001,emoney\n")
    configure(project, real_channels(1, url))
    assert cli("send", "3", "start", "--channel", "sms", "--yes", "-c", str(project)).code == 0
    [delivery] = asyncio.run(deliveries(project))
    assert delivery.provider_ref is not None

    async def scenario() -> list[Applied | None]:
        config = load_config(project)
        tokens = DeliveryTokens.of(config)
        async with project_ledger(project) as ledger:
            reports = TwilioReports(ledger, config.receipts.sms, config.retry, "secret",
                                    tokens, lambda: datetime.now(UTC))

            async def report(token: str, sid: str, status: str) -> Applied | None:
                callback = f"https://dispatcher.example.jp/twilio/status/{token}"
                params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": "30005"}
                signature = RequestValidator("secret").compute_signature(callback, params)
                return await reports.callback(callback, params, signature, token)

            assert delivery.provider_ref is not None
            return [await report(f"{delivery.id}", delivery.provider_ref, "undelivered"),
                    await report(f"{delivery.id}-{'0' * 16}", delivery.provider_ref,
                                 "undelivered"),
                    await report(tokens.callback(delivery.id), "SM" + "9" * 32, "undelivered"),
                    await report(tokens.callback(delivery.id), delivery.provider_ref,
                                 "delivered")]

    assert asyncio.run(scenario()) == [None, None, Applied.RECORDED, Applied.MOVED]
    [after] = asyncio.run(deliveries(project))
    assert after.state == DeliveryState.DELIVERED.value and after.error_code is None
    kept = asyncio.run(forged_reports(project))
    assert [k.source for k in kept] == ["twilio-callback"] * 2
    assert all(k.claimed.endswith(f"/twilio/status/{delivery.id}") or "-0000" in k.claimed
               for k in kept)


async def forged_reports(project: Path) -> list[ForgedReport]:
    async with project_ledger(project) as ledger:
        return await ledger.forged()
