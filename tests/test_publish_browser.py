"""The published page as a person sees it: Debian's Chromium, driven by Playwright (its own
browser downloads cannot be fetched here), with the IPAex font the project installs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; without the background-networking flags it keeps
# trying to reach Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = ROOT / "var" / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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


def keep(page: Page, name: str) -> None:
    """A screenshot among the test's artefacts (var/test-artifacts, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_page_shows_the_next_window_then_its_reserve_date(project: Path,
                                                             browser: Browser) -> None:
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), "scripts/install installs it"
    page = published_page(project, browser, "2021-07-01T09:00:00+09:00")
    upcoming = page.locator("section", has_text="今後のメンテナンス予定")
    first = upcoming.locator("article").first
    assert first.locator(".slot").inner_text() == "2021年7月19日(月) AM1:00～AM2:00"
    assert "予備日" in first.inner_text() and "2021年8月23日(月)" in first.inner_text()
    assert page.locator("section", has_text="終了したメンテナンス").locator(
        "article").count() == 2
    keep(page, "publish-index.png")
    page.close()

    dispatcher("postpone", "3", "--no-notice", "--yes", "-c", str(project))
    page = published_page(project, browser, "2021-07-01T09:05:00+09:00")
    moved = page.locator("article[id='2021-07-19-emoney']")
    assert moved.locator(".slot").inner_text() == "2021年8月23日(月) AM1:00～AM2:00"
    assert moved.locator(".moved").is_visible()
    assert "当初の予定: 2021年7月19日(月)" in moved.locator(".moved").inner_text()
    keep(page, "publish-index-postponed.png")
    page.close()
