"""The published page as a person sees it: Debian's Chromium, driven by Playwright (its own
browser downloads cannot be fetched here), with the IPAex font the project installs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Browser, Page

from tests.helpers import ROOT, keep_screenshot, reserve_ahead


def dispatcher(*args: str) -> None:
    """A command in its own process: Playwright's sync API holds this thread's event loop."""
    done = subprocess.run([sys.executable, "-m", "dispatcher", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def published_page(project: Path, browser: Browser, now: str) -> Page:
    out = project.parent / "public"
    dispatcher("publish", "--out", str(out), "--now", now, "-c", str(project))
    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    page.goto((out / "index.html").as_uri())
    return page


def test_the_page_shows_the_next_window_then_its_reserve_date(project: Path,
                                                             browser: Browser) -> None:
    page = published_page(project, browser, "2021-07-01T09:00:00+09:00")
    upcoming = page.locator("section", has_text="今後のメンテナンス予定")
    first = upcoming.locator("article").first
    assert first.locator(".slot").inner_text() == "2021年7月19日(月) AM1:00～AM2:00"
    assert "予備日" in first.inner_text() and "2021年8月23日(月)" in first.inner_text()
    assert page.locator("section", has_text="終了したメンテナンス").locator(
        "article").count() == 2
    keep_screenshot(page, "publish-index.png")
    page.close()

    reserve_ahead(project)
    dispatcher("postpone", "3", "--no-notice", "--yes", "-c", str(project))
    page = published_page(project, browser, "2021-07-01T09:05:00+09:00")
    moved = page.locator("article[id='2021-07-19-emoney']")
    assert moved.locator(".slot").inner_text() == "2030年8月23日(金) AM1:00～AM2:00"
    assert moved.locator(".moved").is_visible()
    assert "当初の予定: 2021年7月19日(月)" in moved.locator(".moved").inner_text()
    keep_screenshot(page, "publish-index-postponed.png")
    page.close()
