"""Calls through the real twilio SDK to a local server speaking Twilio's Calls API, which
plays each call as Twilio would (answered by a person or a machine, a key pressed, busy,
no answer) and posts its signed requests to the daemon: the TwiML it fetches, the key,
and the end."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.ledger import DeliveryRecord
from tests.helpers import (
    TOKYO,
    WINDOW_3,
    Cli,
    daemon_with_console,
    deliveries,
    timed_window,
    use_contacts,
    wait_for,
)
from tests.servers import TWILIO_OAI, FakeTwilio, prism_server

ROWS = "".join(f"M{i},加盟店{i},担当{i},,,090-1000-{1000 + i},emoney,\n" for i in range(1, 6))
FATES = {"+819010001001": "human-1", "+819010001002": "machine", "+819010001003": "busy",
         "+819010001004": "no-answer", "+819010001005": "human"}


def calling(project: Path, twilio_url: str) -> None:
    now = datetime.now(UTC).astimezone(TOKYO).replace(microsecond=0, tzinfo=None)
    timed_window(project, now + timedelta(days=1), now + timedelta(days=1, hours=1), None)
    text = project.read_text(encoding="utf-8").replace('channels = ["email", "sms"]',
                                                       'channels = ["voice"]', 1)
    project.write_text(text + f'''
[channels.voice]
backend = "twilio"
from = "+815012345678"
base_url = "{twilio_url}"
voice = "Polly.Takumi"

[confirm]
phases = ["start"]

[retry]
max_attempts = 1
''', encoding="utf-8")
    use_contacts(project, "")
    (project.parent / "contacts" / "test.csv").write_text(
        "id,merchant,name,fax,email,sms,tags,phone\n" + ROWS, encoding="utf-8")


def test_each_call_says_the_notice_in_japanese_and_1_confirms(
        project: Path, cli: Cli, twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    fake.calls.fates.update(FATES)
    calling(project, url)
    with daemon_with_console(project) as port:
        sent = cli("send", "3", "start", "--yes", "--config", str(project))
        assert sent.code == 0, sent.err
        wait_for(lambda: len(fake.calls.ended) == 5, 120, "five calls to end")
        wait_for(lambda: len(_final(project)) == 5, 120, "five calls settled")
        forged = _post(f"http://127.0.0.1:{port}/twilio/call/1-00000000", {"CallSid": "CA1"})
    assert forged == 403
    assert all(code == 200 for _, _, code in fake.calls.ended), fake.calls.ended
    for form in fake.calls.accepted:
        assert form["Url"].startswith(f"http://127.0.0.1:{port}/twilio/call/")
        assert form["MachineDetection"] == "DetectMessageEnd"
        assert form["From"] == "+815012345678"
    by_number = {form["To"]: sid for sid, form in _sids(fake)}
    person = ET.fromstring(fake.calls.heard[by_number["+819010001001"]])
    [gather] = person.findall(".//Gather")
    assert gather.get("numDigits") == "1" and "/twilio/gather/" in (gather.get("action") or "")
    says = person.findall(".//Say")
    assert all(s.get("language") == "ja-JP" and s.get("voice") == "Polly.Takumi" for s in says)
    assert any("1を押してください" in (s.text or "") for s in says)
    machine = ET.fromstring(fake.calls.heard[by_number["+819010001002"]])
    assert machine.findall(".//Gather") == []
    assert "0120-220-766" in "".join(s.text or "" for s in machine.findall(".//Say"))
    states = {d.contact_id: d.state for d in _final(project)}
    assert states == {"M1": "delivered", "M2": "delivered", "M3": "undelivered",
                      "M4": "undelivered", "M5": "delivered"}
    status = json.loads(cli("status", "3", "--json", "--config", str(project)).out)
    [start] = [n for n in status["notices"] if n["phase"] == "start"]
    assert start["confirmed"] == 1  # M1 pressed 1; the others heard it, or not


def test_a_busy_line_is_called_again_per_retry_and_then_given_up(
        project: Path, cli: Cli, twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    fake.calls.fates.update({"+819010001001": "busy", "+819010001002": "no-answer"})
    calling(project, url)
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace("[retry]\nmax_attempts = 1", "[retry]\nmax_attempts = 2\n"
                                    "initial_delay_seconds = 1\nmax_delay_seconds = 1"),
                       encoding="utf-8")
    with daemon_with_console(project):
        assert cli("send", "3", "start", "--yes", "--config", str(project)).code == 0
        # the daemon takes up the notice the busy line reopened, and calls again
        wait_for(lambda: len(fake.calls.ended) == 7, 180, "five calls and two again")
        wait_for(lambda: len(_final(project)) == 5, 120, "every call settled")
    called = [form["To"] for form in fake.calls.accepted]
    assert called.count("+819010001001") == 2 and called.count("+819010001002") == 2
    assert all(called.count(f"+81901000100{n}") == 1 for n in (3, 4, 5))
    states = {d.contact_id: (d.state, d.attempts) for d in _final(project)}
    assert states["M1"] == ("undelivered", 2) and states["M2"] == ("undelivered", 2)
    assert states["M3"] == ("delivered", 1)


@pytest.mark.skipif(not TWILIO_OAI.is_file(), reason="Twilio's description is not here")
def test_every_call_request_matches_twilios_own_description(
        project: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = "AC" + "0123456789abcdef" * 2  # the shape Twilio's description asks for
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", account)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    log = tmp_path / "prism.log"
    with prism_server(log) as url:
        calling(project, url)
        with project.open("a", encoding="utf-8") as config:  # calls with Url and callbacks
            config.write('\n[http]\nlisten = "127.0.0.1:8025"\n'
                         'public_url = "https://dispatcher.example.jp"\n')
        sent = cli("send", "3", "start", "--yes", "--config", str(project))
        assert sent.code == 0, sent.err + sent.out
        malformed = _post(f"{url}/2010-04-01/Accounts/{account}/Calls.json",
                          {"From": "+815012345678"}, authorised=account)
    assert malformed == 422  # Prism does check: a call without To is refused
    calls = [d for d in asyncio.run(deliveries(project, WINDOW_3)) if d.channel == "voice"]
    assert len(calls) == 5 and {d.state for d in calls} == {"sent"}
    assert all((d.provider_ref or "").startswith("CA") for d in calls)
    said = log.read_text(encoding="utf-8")
    assert said.count("The request passed the validation rules") == 5  # each call
    assert said.count("Request did not pass the validation rules") == 1  # the malformed


def _final(project: Path) -> list[DeliveryRecord]:
    found = asyncio.run(deliveries(project, WINDOW_3))
    return [d for d in found if d.state in ("delivered", "undelivered")]


def _sids(fake: FakeTwilio) -> list[tuple[str, dict[str, str]]]:
    return [(f"CA{i:032d}", form) for i, form in enumerate(fake.calls.accepted, 1)]


def _post(url: str, params: dict[str, str], authorised: str | None = None) -> int:
    import base64
    from urllib.parse import urlencode
    headers = {"X-Twilio-Signature": "forged"}
    if authorised:
        login = base64.b64encode(f"{authorised}:secret".encode()).decode()
        headers = {"Authorization": f"Basic {login}"}
    request = urllib.request.Request(url, urlencode(params).encode(), method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
