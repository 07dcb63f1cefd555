"""Confirmation of receipt: the personal link each delivery of a notice that asks carries
(its code proves itself, it fits the SMS, it prints as a QR code a fax machine keeps), the
page it opens (a GET changes nothing, a POST confirms, a changed code is refused), and the
help desk's `confirm` for a merchant who phoned."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.keys import KeyFile
from dispatcher.render import ConfirmLinks, Renderer, check_inputs, normalised, render_pdf
from dispatcher.table import Channel, Phase, build_notice, find_window, load_inputs
from tests.helpers import (
    WINDOW_3,
    Cli,
    HttpClient,
    console_server,
    project_ledger,
    use_contacts,
)

NOW = datetime(2021, 7, 19, 1, 0, 30, tzinfo=UTC)
KEEP = timedelta(days=30)
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
FIVE = "".join(f"M{i},加盟店{i},担当{i},03-5552-{1000 + i},m{i}@example.jp,"
               f"090-1000-{1000 + i},emoney\n" for i in range(1, 6))
SMS_LINK = re.compile(r"確認:(\S+/c/([0-9a-z]+))$")


def links_in(folder: Path) -> dict[str, tuple[str, str]]:
    """Each contact's link in its start SMS, and the link's code."""
    found = {}
    for path in sorted(folder.glob("var/outbox/sms/*start*/*.txt")):
        match = SMS_LINK.search(path.read_text(encoding="utf-8").strip())
        assert match, path.read_text(encoding="utf-8")
        found[path.name.split("-")[0]] = (match.group(1), match.group(2))
    return found


@pytest.fixture
def links(tmp_path: Path) -> ConfirmLinks:
    return ConfirmLinks("https://dispatcher.example.jp", KeyFile(tmp_path / "secret").keys,
                        KEEP)


@given(st.integers(min_value=1, max_value=10**9), st.data())
def test_a_code_names_its_delivery_and_a_changed_one_names_none(
        tmp_path_factory: pytest.TempPathFactory, delivery_id: int, data: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("keys")
    links = ConfirmLinks("https://d.example.jp", KeyFile(folder / "secret").keys, KEEP)
    link = links.link(delivery_id)
    assert link.url == f"https://d.example.jp/c/{link.code}" and len(link.code) <= 14
    assert links.delivery_of(link.code, NOW) == delivery_id
    assert links.delivery_of(link.printed, NOW) == delivery_id  # 3K7F-2M9Q-X1, as typed
    at = data.draw(st.integers(min_value=0, max_value=len(link.code) - 1))
    other = data.draw(st.sampled_from([c for c in ALPHABET if c != link.code[at]]))
    changed = link.code[:at] + other + link.code[at + 1:]
    assert links.delivery_of(changed, NOW) is None


def test_codes_forgive_what_a_person_mistypes_and_nothing_else(links: ConfirmLinks) -> None:
    code = links.link(4242).code
    spoken = code.upper().replace("1", "I").replace("0", "O")
    assert normalised(f" {spoken[:4]}-{spoken[4:8]} {spoken[8:]} ") == code
    for junk in ("", "abc", "z" * 9, "0" * 200, "uuuuuuuuuuuu", "../../etc/passwd", code + "0"):
        assert links.delivery_of(junk, NOW) is None, junk


def test_a_rotated_key_still_verifies_for_its_days_and_then_not(tmp_path: Path) -> None:
    key_file = KeyFile(tmp_path / "secret")
    links = ConfirmLinks("https://d.example.jp", key_file.keys, KEEP)
    code = links.link(7).code
    key_file.rotate(NOW, KEEP)
    assert links.link(7).code != code
    assert links.delivery_of(code, NOW + KEEP - timedelta(hours=1)) == 7
    assert links.delivery_of(code, NOW + KEEP + timedelta(hours=1)) is None


def asking(project: Path, phases: str = '["start", "end", "postponed"]',
           public_url: str = "https://dispatcher.example.jp") -> None:
    with project.open("a", encoding="utf-8") as config:
        config.write(f'\n[http]\nlisten = "127.0.0.1:8025"\npublic_url = "{public_url}"\n'
                     f"\n[confirm]\nphases = {phases}\n")


def test_the_shipped_templates_carry_the_link_within_two_sms_segments(project: Path) -> None:
    asking(project)
    inputs = load_inputs(project)
    assert check_inputs(inputs, NOW) == []  # every SMS of every phase, every contact
    window = find_window(inputs.config.windows, "3")
    renderer = Renderer(inputs.config.settings.templates_dir, inputs.config)
    contact = inputs.contacts[0]
    start = build_notice(window, window.planned, Phase.START)
    sms = renderer.render(start, contact, Channel.SMS, NOW, delivery_id=99)
    email = renderer.render(start, contact, Channel.EMAIL, NOW, delivery_id=100)
    code = ConfirmLinks.of(inputs.config)
    assert code is not None
    assert sms.body.endswith(code.link(99).url) and sms.segments is not None
    assert sms.segments.count <= 2
    assert code.link(100).url in email.body and "確認しました" in email.body
    announce = build_notice(window, window.planned, Phase.ANNOUNCE)
    assert "/c/" not in renderer.render(announce, contact, Channel.SMS, NOW, 101).body


def test_the_fax_page_keeps_one_page_and_a_qr_code_a_fax_machine_prints(
        project: Path, tmp_path: Path) -> None:
    asking(project)
    inputs = load_inputs(project)
    window = find_window(inputs.config.windows, "3")
    renderer = Renderer(inputs.config.settings.templates_dir, inputs.config)
    notice = build_notice(window, window.planned, Phase.START)
    page = renderer.render(notice, inputs.contacts[0], Channel.FAX, NOW, delivery_id=31337)
    document = render_pdf(page.body, str(inputs.config.settings.templates_dir))
    assert document.pages == 1
    pdf, g3 = tmp_path / "page.pdf", tmp_path / "page.tif"
    pdf.write_bytes(document.pdf)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-sDEVICE=tiffg3", "-r204x196",
                    f"-sOutputFile={g3}", str(pdf)], check=True)
    read = subprocess.run(["zbarimg", "--raw", "-q", str(g3)], capture_output=True, text=True)
    links = ConfirmLinks.of(inputs.config)
    assert links is not None
    link = links.link(31337)
    assert read.stdout.strip() == link.url
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert link.printed in text and "0120-220-766" in text


def confirmed(cli: Cli, project: Path) -> int:
    result = cli("status", "3", "--json", "--config", str(project))
    assert result.code == 0, result.err
    [start] = [n for n in json.loads(result.out)["notices"]
               if n["phase"] == "start"]
    return int(start["confirmed"])


def test_a_get_confirms_nothing_a_post_confirms_and_a_changed_code_is_refused(
        project: Path, cli: Cli) -> None:
    use_contacts(project, FIVE)
    with console_server(project) as port:
        with project.open("a", encoding="utf-8") as config:
            config.write('\n[confirm]\nphases = ["start"]\n')
        assert cli("send", "3", "start", "--yes", "--config", str(project)).code == 0
        sms = links_in(project.parent)
        assert sorted(sms) == [f"M{i}" for i in range(1, 6)]
        merchant = HttpClient(port)
        url, code = sms["M2"]
        path = url[url.index("/c/"):]
        for _ in range(3):  # a mail scanner, a link preview, the merchant
            status, headers, page = merchant.request("GET", path)
            assert status == 200 and "確認しました</button>" in page and "加盟店2 御中" in page
            assert "noindex" in page and "default-src 'none'" in headers["content-security-policy"]
        assert confirmed(cli, project) == 0
        status, _, page = merchant.request("POST", path, {})
        assert status == 200 and "確認済みです" in page and "</button>" not in page
        assert merchant.request("POST", path, {})[0] == 200  # again: harmless
        assert confirmed(cli, project) == 1
        changed = code[:-1] + ("0" if code[-1] != "0" else "1")
        assert merchant.request("GET", f"/c/{changed}")[0] == 404
        assert merchant.request("POST", f"/c/{changed}", {})[0] == 404
        assert confirmed(cli, project) == 1
    log = (project.parent / "console.log").read_text(encoding="utf-8")
    assert log.count("confirmation link refused: the code does not verify") == 2


def test_an_address_that_keeps_guessing_is_refused_and_others_are_not(
        project: Path, cli: Cli) -> None:
    use_contacts(project, FIVE)
    with console_server(project) as port:
        with project.open("a", encoding="utf-8") as config:
            config.write('\n[confirm]\nphases = ["start"]\n')
        assert cli("send", "3", "start", "--yes", "--config", str(project)).code == 0
        url, _ = links_in(project.parent)["M1"]
        path = url[url.index("/c/"):]
        guesser = HttpClient(port, source="127.0.0.9")
        assert all(guesser.request("GET", f"/c/{n:010d}")[0] == 404 for n in range(20))
        assert guesser.request("GET", path)[0] == 429  # refused before any code is read
        assert HttpClient(port, source="127.0.0.10").request("GET", path)[0] == 200


def test_the_help_desk_confirms_by_contact_or_by_the_code_on_the_fax(
        project: Path, cli: Cli) -> None:
    use_contacts(project, FIVE)
    asking(project, '["start"]')
    c = ("--config", str(project))
    refused = cli("confirm", "3", "start", "M1", *c)
    assert refused.code == 2 and "PHASE" in refused.err and "nothing to confirm" in refused.err
    assert cli("send", "3", "start", "--yes", *c).code == 0
    first = cli("confirm", "3", "start", "M1", *c)
    assert first.code == 0 and "M1: confirmed" in first.out
    again = cli("confirm", "3", "start", "M1", *c)
    assert again.code == 0 and "had already confirmed" in again.out
    _, code = links_in(project.parent)["M4"]
    printed = code.upper()
    by_code = cli("confirm", "3", "start", f"{printed[:4]}-{printed[4:]}", "--json", *c)
    assert by_code.code == 0 and '"contact": "M4"' in by_code.out
    unknown = cli("confirm", "3", "start", "M9", *c)
    assert unknown.code == 2 and "CONTACT" in unknown.err and "Traceback" not in unknown.err
    assert confirmed(cli, project) == 2

    async def audited() -> list[str]:
        async with project_ledger(project) as ledger:
            return [e["detail"] for e in await ledger.audit_entries(WINDOW_3)
                    if e["action"] == "confirm"]

    entries = asyncio.run(audited())
    assert len(entries) == 2 and all("start" in str(e) for e in entries)


def test_the_console_confirms_for_a_merchant_who_phoned_and_lists_who_has_not(
        project: Path, cli: Cli) -> None:
    use_contacts(project, FIVE)
    with console_server(project) as port:
        with project.open("a", encoding="utf-8") as config:
            config.write('\n[confirm]\nphases = ["start"]\n')
        assert cli("send", "3", "start", "--yes", "--config", str(project)).code == 0
        _, code = links_in(project.parent)["M3"]
        action = "/windows/3/notices/start/confirm"
        desk = HttpClient(port)
        assert desk.request("POST", action, {"who": code, "csrf": "x"})[0] == 401
        assert desk.login() == 303
        _, _, page = desk.request("GET", "/windows/3/notices/start")
        assert "確認を代行" in page and "受領確認 0 件" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        assert desk.request("POST", action, {"who": "nobody", "csrf": csrf.group(1)})[0] == 400
        status, headers, _ = desk.request("POST", action, {"who": code.upper(),
                                                           "csrf": csrf.group(1)})
        assert status == 303 and "contact=M3" in headers["location"]
        _, _, page = desk.request("GET", "/windows/3/notices/start")
        assert "受領確認 1 件" in page
        _, _, csv = desk.request("GET", "/windows/3/notices/start/unreached.csv")
    assert confirmed(cli, project) == 1
    listed = json.loads(cli("unreached", "3", "start", "--json", "--config", str(project)).out)
    assert listed["asks_to_confirm"] and listed["confirmed"] == 1
    assert [c["contact"] for c in listed["contacts"]] == ["M1", "M2", "M4", "M5"]
    assert all(not c["confirmed"] and c["reached"] is False for c in listed["contacts"])
    rows = csv.splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["M1", "M2", "M4", "M5"]
    assert all(r.split(",")[-3:-1] == ["no", "no"] for r in rows)  # confirmed, reached
