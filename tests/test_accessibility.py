"""axe-core in Debian's Chromium on the published page and on each console page, in the
states an operator or a merchant meets them: no serious or critical violation."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page

from tests.axe import blocking
from tests.helpers import console_server, dispatcher, log_in, reserve_ahead


def checked_page(browser: Browser) -> Page:
    # The pages forbid injected scripts (Content-Security-Policy); axe is one.
    return browser.new_page(bypass_csp=True, viewport={"width": 1200, "height": 900})


def test_axe_reports_a_violation_it_is_shown(browser: Browser) -> None:
    """The check checks: a page with an unlabelled form field and an image without a text
    is reported, so an empty list elsewhere means axe ran and found nothing."""
    page = checked_page(browser)
    page.set_content('<html lang="ja"><body><main><h1>t</h1><img src="x.png">'
                     '<input type="text"></main></body></html>')
    found = blocking(page)
    assert any("image-alt" in line for line in found), found
    assert any("label" in line for line in found), found


def test_the_published_page_has_no_serious_violation(project: Path, browser: Browser) -> None:
    out = project.parent / "public"
    page = checked_page(browser)
    for now, before in (("2021-07-01T09:00:00+09:00", ()),
                        ("2021-07-01T09:05:00+09:00", ("postpone", "3", "--no-notice", "--yes"))):
        if before:
            reserve_ahead(project)
            dispatcher(project, *before)
        dispatcher(project, "publish", "--out", str(out), "--now", now)
        page.goto((out / "index.html").as_uri())
        assert blocking(page) == [], now


def test_every_console_page_has_no_serious_violation(project: Path, browser: Browser) -> None:
    with project.open("a", encoding="utf-8") as config:
        config.write('\n[confirm]\nphases = ["start"]\n')
    with console_server(project) as port:
        base = f"http://127.0.0.1:{port}"
        page = checked_page(browser)
        page.goto(f"{base}/login")
        assert blocking(page) == [], "login"
        log_in(page, base)
        assert blocking(page) == [], "the table before a send"
        dispatcher(project, "send", "3", "start", "--yes")
        for path in ("/", "/windows/3/notices/start", "/windows/3/notices/start?contact=M0001",
                     "/windows/3/notices/end?contact=M0002", "/night", "/audit"):
            page.goto(f"{base}{path}")
            assert blocking(page) == [], path
        sms = next((project.parent / "var" / "outbox" / "sms").glob("*start*/M0001-*.txt"))
        link = sms.read_text(encoding="utf-8").strip().rsplit("確認:", 1)[1]
        page.goto(link)
        assert blocking(page) == [], "the confirmation link's page"
        page.click("form.confirm button")
        page.wait_for_selector("p.done")
        assert blocking(page) == [], "the page once confirmed"
