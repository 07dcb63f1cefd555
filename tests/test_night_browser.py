"""The night board in a real browser (Debian's Chromium through Playwright), on a daemon
whose window 3 ends a few seconds after it starts, with a confirmed end and an overrun a
minute after: the board turns to the overrun by itself (server-sent events), then the desk
extends the work, sends an update (the box counts its SMS segments) and reports it done,
and each notice goes out once. The screenshots it keeps are the README's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page

from dispatcher.table import jp_clock
from tests.axe import blocking
from tests.helpers import (
    TOKYO,
    WINDOW_3,
    daemon_with_console,
    keep_screenshot,
    log_in,
    timed_window,
)

# bounds against a hang, never a measure of speed: the overrun comes a minute after the end
OVERRUN_SECONDS = 600
SENT_SECONDS = 300
EMAILS, TEXTS = 28, 26
PANEL = "#night-3"


def overrunning_soon(project: Path) -> datetime:
    """Window 3 started a minute ago and ends in 20 s, confirmed by `done`, overrun a minute
    after its end; the fax dropped (nothing to render). Returns its end."""
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(seconds=20)
    timed_window(project, now - timedelta(minutes=1), end, None)
    text = project.read_text(encoding="utf-8")
    text = text.replace('notify = "broadcast"', 'notify = "broadcast"\nend_notice = "confirmed"', 1)
    text = text.replace("catch_up_minutes = 30", "catch_up_minutes = 30\noverrun_after_minutes = 1")
    project.write_text(text, encoding="utf-8")
    return end


def written(project: Path, channel: str, tag: str) -> int:
    folder = project.parent / "var" / "outbox" / channel / f"{WINDOW_3}_planned_{tag}"
    return len(list(folder.glob("*")))


def field(page: Page, name: str) -> str:
    return page.inner_text(f"{PANEL} [data-field={name}]")


def wait_for_notice(page: Page, tag: str, label: str) -> None:
    """The panel shows ``tag`` as the last notice, all sent, and the work as ``label``."""
    page.wait_for_function(
        "([panel, tag, label]) => { const p = document.querySelector(panel);"
        " const t = p.querySelector('[data-field=tag]');"
        " const percent = p.querySelector('[data-field=percent]');"
        " return t && t.textContent === tag && percent.textContent === '100'"
        " && p.querySelector('[data-field=label]').textContent === label; }",
        arg=[PANEL, tag, label], timeout=SENT_SECONDS * 1000)


def report(page: Page, action: str, **fields: str) -> None:
    """Fill and send one of the panel's report forms, confirmed by the window's id."""
    form = f"{PANEL} form[action$='/{action}']"
    for name, value in fields.items():
        page.fill(f"{form} [name={name}]", value)
    page.fill(f"{form} input[name=confirm]", WINDOW_3)
    page.click(f"{form} button")
    page.wait_for_url("**/night")


def test_the_night_board_follows_an_overrun_an_extension_an_update_and_done(
        project: Path, browser: Browser) -> None:
    end = overrunning_soon(project)
    with daemon_with_console(project) as port:
        base = f"http://127.0.0.1:{port}"
        # bypass_csp: axe-core is injected into the board (its policy forbids scripts)
        page = browser.new_page(viewport={"width": 1200, "height": 1100}, bypass_csp=True)
        log_in(page, base)
        page.goto(f"{base}/night")
        wait_for_notice(page, "start", "作業中")
        assert field(page, "next").startswith("overrun ")
        rows = page.inner_text(f"{PANEL} [data-field=channels]")
        assert f"{EMAILS} / {EMAILS}" in rows and f"{TEXTS} / {TEXTS}" in rows

        # no end notice at the end: a minute later the overrun, seen without a reload
        page.wait_for_function(
            "panel => document.querySelector(panel + ' [data-field=tag]').textContent"
            " === 'overrun'", arg=PANEL, timeout=OVERRUN_SECONDS * 1000)
        wait_for_notice(page, "overrun", "作業中（終了予定超過）")
        assert page.get_attribute(PANEL, "class") == "panel state-overrunning"
        assert page.is_hidden("#board-stale")
        assert written(project, "email", "end") == 0
        keep_screenshot(page, "night-board-overrun.png")
        assert blocking(page) == []  # the red overrun panel keeps its text readable

        until = (end + timedelta(hours=1)).astimezone(TOKYO)
        report(page, "extend", until=until.strftime("%Y-%m-%dT%H:%M"), reason="機器交換")
        wait_for_notice(page, "extended-1", "延長中")
        assert field(page, "time").endswith(jp_clock(until))
        assert field(page, "next") == "なし"  # the overrun went once; the end waits for done

        box = f"{PANEL} form[action$='/update'] textarea[name=text]"
        page.fill(box, "作業は順調です。AM3:00 頃に終了の見込みです。")
        count = page.inner_text(f"{PANEL} output.sms-count")
        assert count.startswith("SMS: ") and "上限 2 通" in count and "超えて" not in count
        page.fill(box, "遅延" * 80)
        assert "上限を超えています" in page.inner_text(f"{PANEL} output.sms-count")
        page.fill(box, "作業は順調です。AM3:00 頃に終了の見込みです。")
        keep_screenshot(page, "night-board-update.png")
        report(page, "update")
        wait_for_notice(page, "update-1", "延長中")

        report(page, "done")
        wait_for_notice(page, "end", "終了")
        assert page.is_hidden(f"{PANEL} form[action$='/done']")  # the work is over
        keep_screenshot(page, "night-board-done.png")
        assert blocking(page) == []
        page.close()

    for tag in ("start", "overrun", "extended-1", "update-1", "end"):
        assert (written(project, "email", tag), written(project, "sms", tag)) == (
            EMAILS, TEXTS), tag
    sms = next((project.parent / "var" / "outbox" / "sms"
                / f"{WINDOW_3}_planned_update-1").glob("*")).read_text(encoding="utf-8")
    assert "AM3:00 頃に終了の見込みです。" in sms
