"""The confirmation link in a real browser (Debian's Chromium through Playwright): opening
it, as a mail scanner or a link preview would, confirms nothing; the merchant's press of
確認しました does, once."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Browser

from tests.helpers import console_server, dispatcher, keep_screenshot, use_contacts

FIVE = "".join(f"M{i},加盟店{i},担当{i},,m{i}@example.jp,090-1000-{1000 + i},emoney\n"
               for i in range(1, 6))


def confirmed(project: Path) -> int:
    status = json.loads(dispatcher(project, "status", "3", "--json"))
    [start] = [n for n in status["notices"] if n["phase"] == "start"]
    return int(start["confirmed"])


def test_opening_the_link_confirms_nothing_and_the_button_confirms(
        project: Path, browser: Browser) -> None:
    use_contacts(project, FIVE)
    with console_server(project) as port:
        with project.open("a", encoding="utf-8") as config:
            config.write('\n[confirm]\nphases = ["start"]\n')
        dispatcher(project, "send", "3", "start", "--yes")
        [sms] = (project.parent / "var" / "outbox" / "sms").glob("*start*/M3-*.txt")
        link = sms.read_text(encoding="utf-8").strip().rsplit("確認:", 1)[1]
        assert link.startswith(f"http://127.0.0.1:{port}/c/")
        page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone
        page.goto(link)
        assert "加盟店3 御中" in page.inner_text("pre.notice")
        page.reload()  # opened again: still nothing
        assert confirmed(project) == 0
        keep_screenshot(page, "confirm-page.png")
        page.click("form.confirm button")
        page.wait_for_selector("p.done")
        assert "確認済みです" in page.inner_text("p.done")
        assert page.query_selector("form.confirm button") is None
        keep_screenshot(page, "confirm-page-done.png")
        page.goto(link)  # back to the link later: it says so, and changes nothing
        assert "確認済みです" in page.inner_text("main")
        assert confirmed(project) == 1
