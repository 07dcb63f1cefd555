"""The console in a real browser (Debian's Chromium through Playwright): log in, see the
table, open a notice and its fax page, send to the local test servers and watch the
progress reach 100 %, postpone with the confirmation. The screenshots it keeps are the
README's."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser

from tests.helpers import (
    RESERVE_AHEAD,
    TWILIO_ENV,
    configure,
    console_server,
    keep_screenshot,
    log_in,
    real_channels,
    reserve_ahead,
    wait_for,
)
from tests.servers import smtp_server, twilio_server

SEND_SECONDS = 600  # a bound against a hang; a busy machine renders the fax pages slowly


def test_the_desk_sends_watches_and_postpones(project: Path, browser: Browser) -> None:
    with smtp_server() as (sink, smtp_port, _), twilio_server() as (fake, twilio_url):
        configure(project, real_channels(smtp_port, twilio_url))
        reserve_ahead(project)
        with console_server(project, TWILIO_ENV) as port:
            base = f"http://127.0.0.1:{port}"
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            log_in(page, base)
            assert "2021年7月19日(月) AM1:00～AM2:00" in page.inner_text("table.windows")
            keep_screenshot(page, "console-table.png")

            page.goto(f"{base}/windows/3/notices/start?contact=M0001")
            page.wait_for_function(
                "() => { const i = document.querySelector('img.fax');"
                " return i && i.complete && i.naturalWidth > 0; }", timeout=120_000)
            assert "件名: 【J-Mups】メンテナンス作業開始のご連絡" in page.inner_text("#preview")

            page.fill("#actions form.action:first-of-type input[name=confirm]", "3")
            page.click("#actions form.action:first-of-type button")
            assert "確認のため、作業 ID（2021-07-19-emoney）を入力してください" in page.inner_text(
                "main")
            page.fill("#actions form.action:first-of-type input[name=confirm]",
                      "2021-07-19-emoney")
            page.click("#actions form.action:first-of-type button")
            page.wait_for_url(f"{base}/windows/3/notices/start")
            page.wait_for_function("() => document.getElementById('total').textContent !== '0'",
                                   timeout=SEND_SECONDS * 1000)
            keep_screenshot(page, "console-notice-sending.png", full_page=False)
            page.wait_for_function("() => document.getElementById('percent').textContent"
                                   " === '100'", timeout=SEND_SECONDS * 1000)
            assert page.eval_on_selector("#progress", "bar => bar.value") == 100
            assert page.inner_text("#left") == ""  # nothing left to send
            wait_for(lambda: len(sink) >= 28 + 27, 60, "the e-mails and fax mails")
            assert len(fake.accepted) == 26

            page.fill("#actions form[action$='/postpone'] input[name=reason]", "機器不具合")
            page.fill("#actions form[action$='/postpone'] input[name=confirm]",
                      "2021-07-19-emoney")
            page.click("#actions form[action$='/postpone'] button")
            page.wait_for_url(f"{base}/")
            assert f"延期（{RESERVE_AHEAD}）" in page.inner_text("#window-3")
            page.goto(f"{base}/audit")
            audit = page.inner_text("table.audit")
            assert "postpone" in audit and "send" in audit and "desk" in audit
            page.close()
