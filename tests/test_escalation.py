"""Escalation of a notice that asks to confirm ([confirm] steps, callout_after): decided on
an injected clock from when the notice began sending, each step once, stopped when the
notice stops mattering; and the call-out end to end, to the contacts who did not confirm."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.errors import ConfigError
from dispatcher.ledger import NoticeState
from dispatcher.schedule import Action, decide
from dispatcher.table import Channel, Phase, Step, Window, find_window, load_config, parse_config
from tests.configs import MINIMAL
from tests.helpers import (
    TOKYO,
    Cli,
    HttpClient,
    daemon_with_console,
    timed_window,
    use_contacts,
    wait_for,
)
from tests.servers import FakeTwilio

START = datetime(2021, 7, 19, 1, 0, tzinfo=TOKYO)
STEPS = (Step(timedelta(minutes=10), Channel.SMS), Step(timedelta(minutes=20), Channel.VOICE))
KEY = "2021-07-19-emoney/planned/start"


@pytest.fixture
def window(project: Path) -> Window:
    shipped = find_window(load_config(project).windows, "3")
    return replace(shipped, confirm=(Phase.START,), steps=STEPS)


def escalating(window: Window, now: datetime, states: dict[str, NoticeState],
               began: datetime | None = START) -> dict[str, tuple[Action, datetime]]:
    decisions = decide([window], {}, states, now, timedelta(minutes=30),
                       started={KEY: began} if began else {})
    return {d.notice.tag: (d.action, d.at) for d in decisions if d.notice.step}


def test_each_step_is_timed_from_when_the_notice_began_sending(window: Window) -> None:
    began = START + timedelta(seconds=40)  # it went out late: the steps follow it
    done = {KEY: NoticeState.DONE}
    assert escalating(window, START - timedelta(minutes=5), {}, None) == {}  # not sent yet
    assert escalating(window, began + timedelta(minutes=5), done, began) == {
        "start+sms": (Action.SCHEDULE, began + timedelta(minutes=10)),
        "start+voice": (Action.SCHEDULE, began + timedelta(minutes=20))}
    later = escalating(window, began + timedelta(minutes=10), done, began)
    assert later["start+sms"] == (Action.SEND_NOW, began + timedelta(minutes=10))
    sent = {**done, f"{KEY}+sms": NoticeState.DONE}
    assert "start+sms" not in escalating(window, began + timedelta(minutes=25), sent, began)


def test_an_escalation_not_begun_by_the_end_is_missed_and_one_begun_resumes(
        window: Window) -> None:
    done = {KEY: NoticeState.DONE}
    after_end = START + timedelta(hours=1, minutes=1)
    assert {a for a, _ in escalating(window, after_end, done).values()} == {Action.MISSED}
    resumed = escalating(window, after_end, {**done, f"{KEY}+voice": NoticeState.SENDING})
    assert resumed["start+voice"][0] is Action.SEND_NOW


def test_a_notice_that_does_not_ask_does_not_escalate(window: Window) -> None:
    assert escalating(replace(window, confirm=(Phase.END,)), START + timedelta(hours=0.5),
                      {KEY: NoticeState.DONE}) == {}


@pytest.mark.parametrize(("table", "where", "what"), [
    ('phases = ["start"]\ncallout_after = "15m"\nsteps = [{after = "5m", channel = "voice"}]',
     "confirm.callout_after", "one call-out per notice"),
    ('phases = ["start"]\nsteps = [{after = "5m", channel = "sms"}, '
     '{after = "9m", channel = "sms"}]', "confirm.steps", "a channel of its own"),
    ('phases = ["start"]\nsteps = [{after = "soon", channel = "sms"}]',
     "confirm.steps[1].after", "not a lead time"),
    ('callout_after = "15m"', "confirm.callout_after", "none does"),
])
def test_broken_steps_name_their_key(table: str, where: str, what: str) -> None:
    text = MINIMAL + f'\n[http]\nlisten = "127.0.0.1:8025"\n\n[confirm]\n{table}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text.encode(), Path("c.toml"))
    assert any(where in str(p) and what in str(p) for p in caught.value.problems), \
        [str(p) for p in caught.value.problems]


def test_steps_are_kept_in_time_order_with_the_call_out_among_them() -> None:
    text = MINIMAL + ('\n[http]\nlisten = "127.0.0.1:8025"\n\n[confirm]\nphases = ["start"]\n'
                      'callout_after = "40s"\nsteps = [{after = "1h", channel = "email"}]\n')
    [window] = parse_config(text.encode(), Path("c.toml")).windows
    assert window.steps == (Step(timedelta(seconds=40), Channel.VOICE),
                            Step(timedelta(hours=1), Channel.EMAIL))


ROWS = "".join(f"M{i},加盟店{i},担当{i},,,090-1000-{1000 + i},emoney,03-5555-{1000 + i}\n"
               for i in range(1, 6))
SMS_LINK = "確認:"


def test_the_call_out_rings_only_those_who_did_not_confirm(
        project: Path, cli: Cli, twilio: tuple[FakeTwilio, str]) -> None:
    fake, url = twilio
    now = datetime.now(UTC).astimezone(TOKYO).replace(microsecond=0, tzinfo=None)
    # the work starts in 30 s: a call-out is timed from then, even after a send by hand
    # (were the daemon to send the start notice first on a slow machine, all the same)
    timed_window(project, now + timedelta(seconds=30), now + timedelta(hours=1), None)
    text = project.read_text(encoding="utf-8").replace('channels = ["email", "sms"]',
                                                       'channels = ["sms"]', 1)
    project.write_text(text + f'''
[channels.voice]
backend = "twilio"
from = "+815012345678"
base_url = "{url}"

[confirm]
phases = ["start"]
callout_after = "20s"
''', encoding="utf-8")
    use_contacts(project, "")
    (project.parent / "contacts" / "test.csv").write_text(
        "id,merchant,name,fax,email,sms,tags,phone\n" + ROWS, encoding="utf-8")
    with daemon_with_console(project) as port:
        assert cli("send", "3", "start", "--yes", "--config", str(project)).code == 0
        sms = {p.name.split("-")[0]: p.read_text(encoding="utf-8")
               for p in (project.parent / "var" / "outbox" / "sms").glob("*/*.txt")}
        assert len(sms) == 5 and all(SMS_LINK in body for body in sms.values())
        link = sms["M2"].strip().rsplit(SMS_LINK, 1)[1]
        merchant = HttpClient(port)
        path = link[link.index("/c/"):]
        assert merchant.request("GET", path)[0] == 200
        assert _confirmed(cli, project) == 0  # a GET (a scanner, a preview) confirms nothing
        assert merchant.request("POST", path, {})[0] == 200
        assert _confirmed(cli, project) == 1
        changed = path[:-1] + ("0" if path[-1] != "0" else "1")
        assert merchant.request("POST", changed, {})[0] == 404
        wait_for(lambda: len(fake.calls.ended) == 4, 180, "the call-out to four contacts")
    called = sorted(form["To"] for form in fake.calls.accepted)
    assert called == [f"+81355551{n:03d}" for n in (1, 3, 4, 5)]  # their phone, not M2's
    assert all("/twilio/call/" in form["Url"] for form in fake.calls.accepted)
    assert all("<Gather" in twiml and 'language="ja-JP"' in twiml
               for twiml in fake.calls.heard.values())
    wait_for(lambda: all(s["steps"] and s["steps"][0]["state"] == "delivered"
                         for s in _unconfirmed(cli, project)), 120, "the calls settled")
    assert [c["contact"] for c in _unconfirmed(cli, project)] == ["M1", "M3", "M4", "M5"]
    assert {c["steps"][0]["notice"] for c in _unconfirmed(cli, project)} == {"start+voice"}


def _unconfirmed(cli: Cli, project: Path) -> list[dict[str, Any]]:
    result = cli("unreached", "3", "start", "--json", "--config", str(project))
    return list(json.loads(result.out)["contacts"])


def _confirmed(cli: Cli, project: Path) -> int:
    result = cli("status", "3", "--json", "--config", str(project))
    [start] = [n for n in json.loads(result.out)["notices"] if n["phase"] == "start"]
    return int(start["confirmed"])
