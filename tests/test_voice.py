"""The voice channel as far as it is rendered: the contacts' ``phone`` column (else the SMS
number), ``[channels.voice]``, the words of ``templates/voice`` said as a call says a time,
and the TwiML a person or an answering machine hears (outbox and preview write it)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.errors import ConfigError
from dispatcher.render import Renderer, call_twiml
from dispatcher.table import (
    Channel,
    Phase,
    Report,
    WorkReport,
    build_notice,
    find_window,
    jp_spoken_clock,
    jp_spoken_range,
    load_inputs,
    parse_config,
)
from tests.configs import MINIMAL
from tests.helpers import TOKYO, Cli, use_contacts

NOW = datetime(2021, 7, 19, 1, 0, 30, tzinfo=UTC)
ROWS = ("V1,電話だけの店,,,,,emoney,03-5555-0101\n"
        "V2,携帯だけの店,,,,090-1111-2222,emoney,\n"
        "V3,ファクスだけの店,,03-5555-0303,,,emoney,\n")
HEADER = "id,merchant,name,fax,email,sms,tags,phone\n"


def test_a_call_rings_the_phone_column_else_the_sms_number(project: Path) -> None:
    use_contacts(project, "")
    (project.parent / "contacts" / "test.csv").write_text(HEADER + ROWS, encoding="utf-8")
    contacts = {c.id: c for c in load_inputs(project).contacts}
    assert contacts["V1"].address(Channel.VOICE) == "+81355550101"  # a fixed line may ring
    assert contacts["V2"].address(Channel.VOICE) == "+819011112222"
    assert contacts["V3"].address(Channel.VOICE) is None


@pytest.mark.parametrize(("table", "where", "what"), [
    ('backend = "twilio"', "channels.voice.from", "the number calls come from"),
    ('backend = "twilio"\nfrom = "+815012345678"\nmessaging_service_sid = "MG1"',
     "channels.voice.messaging_service_sid", "SMS only"),
    ('voice = "Polly.Joanna"', "channels.voice.voice", "must be one of"),
])
def test_a_broken_voice_table_names_its_key(table: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config((MINIMAL + f"\n[channels.voice]\n{table}\n").encode(), Path("c.toml"))
    assert any(where in str(p) and what in str(p) for p in caught.value.problems), \
        [str(p) for p in caught.value.problems]


def test_times_are_said_as_a_call_says_them() -> None:
    assert jp_spoken_clock(datetime(2021, 7, 19, 0, 0, tzinfo=TOKYO)) == "午前0時"
    assert jp_spoken_clock(datetime(2021, 7, 19, 12, 0, tzinfo=TOKYO)) == "午後0時"
    assert jp_spoken_clock(datetime(2021, 7, 19, 22, 30, tzinfo=TOKYO)) == "午後10時30分"
    assert jp_spoken_range(datetime(2021, 5, 30, 22, 30, tzinfo=TOKYO),
                           datetime(2021, 5, 31, 3, 0, tzinfo=TOKYO)) == \
        "5月30日、日曜日、午後10時30分から翌日の午前3時まで"


def says(twiml: str) -> tuple[list[ET.Element], list[ET.Element]]:
    root = ET.fromstring(twiml)
    return root.findall(".//Say"), root.findall(".//Gather")


@pytest.mark.parametrize("asks", [True, False])
def test_a_person_hears_it_twice_and_a_machine_once_with_the_help_desk(
        project: Path, asks: bool) -> None:
    if asks:
        with project.open("a", encoding="utf-8") as config:
            config.write('\n[http]\nlisten = "127.0.0.1:8025"\n\n[confirm]\nphases = ["start"]\n')
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    notice = build_notice(window, window.planned, Phase.START)
    renderer = Renderer(inputs.config.settings.templates_dir, inputs.config)
    message = renderer.render(notice, inputs.contacts[0], Channel.VOICE, NOW, delivery_id=5)
    assert message.script is not None and "午前1時から" in message.script.message
    person, gathers = says(call_twiml(message.script, "Polly.Takumi", "https://d.example.jp/g"))
    assert all(s.get("language") == "ja-JP" and s.get("voice") == "Polly.Takumi"
               for s in person)
    [gather] = gathers
    assert gather.get("numDigits") == "1" and gather.get("action") == "https://d.example.jp/g"
    inside = [s.text or "" for s in gather.findall("Say")]
    assert sum(message.script.message in text for text in inside) == 2
    assert any("1を押してください" in text for text in inside) is asks
    machine, none = says(call_twiml(message.script, "Polly.Takumi", None, machine=True))
    assert none == [] and sum(message.script.message in (s.text or "") for s in machine) == 1
    assert "0120-220-766" in (machine[-1].text or "")


def test_the_outbox_writes_each_call_as_its_twiml(project: Path, cli: Cli) -> None:
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('channels = ["fax", "email", "sms"]',
                                    'channels = ["voice"]', 1), encoding="utf-8")
    use_contacts(project, "")
    (project.parent / "contacts" / "test.csv").write_text(HEADER + ROWS, encoding="utf-8")
    result = cli("send", "3", "start", "--yes", "--config", str(project))
    assert result.code == 0, result.err
    calls = sorted((project.parent / "var" / "outbox" / "voice").glob("*/*.xml"))
    assert [p.name.split("-")[0] for p in calls] == ["V1", "V2"]
    for call in calls:
        person, [gather] = says(call.read_text(encoding="utf-8"))
        assert gather.get("numDigits") == "1"
        assert all(s.get("language") == "ja-JP" for s in person)


def test_markers_in_an_update_or_a_name_are_said_as_words(project: Path) -> None:
    """An update text (or a merchant's name) holding ``[confirm]`` or ``[machine]`` used to
    split the call where it stood; only the template's own text makes the parts."""
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    report = WorkReport(window.id, "planned", Report.UPDATE, 1, NOW, None,
                        "作業中です[machine]1を押してください[confirm]", "desk")
    notice = build_notice(window, window.planned, Phase.UPDATE, report=report)
    renderer = Renderer(inputs.config.settings.templates_dir, inputs.config)
    contact = replace(inputs.contacts[0], merchant="[thanks]商店")
    message = renderer.render(notice, contact, Channel.VOICE, NOW)
    script = message.script
    assert script is not None
    assert "作業中です［machine］1を押してください［confirm］" in script.message
    assert "0120-220-766" in script.closing and "作業中です" not in script.closing
    assert script.thanks is None or "商店" not in script.thanks
