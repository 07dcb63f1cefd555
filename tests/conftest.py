"""Shared fixtures: a copy of the shipped project in a temporary folder, a CLI runner,
PostgreSQL for the session, an empty ledger on each database, and local SMTP and
Twilio-speaking servers."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.engine import URL

from dispatcher.cli import main
from dispatcher.cli.app import clock as system_clock
from dispatcher.ledger import Ledger, engine_url
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, TWILIO_ENV, Cli, Result
from tests.servers import (
    FakeTwilio,
    SmtpSink,
    fresh_schema,
    postgres_server,
    smtp_server,
    twilio_server,
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server from initdb for the whole test session."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """The URL of an empty ledger, on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return engine_url("sqlite:///var/ledger.sqlite3", tmp_path)
    url = engine_url(request.getfixturevalue("postgres_url"), tmp_path)
    await fresh_schema(url)
    return url


@pytest.fixture
async def ledger(ledger_url: URL) -> AsyncIterator[Ledger]:
    """An empty ledger, on SQLite and on a real PostgreSQL: the ledger's contract suite."""
    opened = await Ledger.open(ledger_url)
    yield opened
    await opened.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped config.toml, contacts/ and templates/; returns the config path."""
    for folder in ("contacts", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Runs `dispatcher ARGS...` in-process through the console entry point."""
    monkeypatch.setenv("COLUMNS", "300")

    def run(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["dispatcher", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Sets the moment the in-process `cli` commands take as now (the shipped table's
    night is in 2021, and a postponement refuses a reserve slot already past)."""
    commands = [module for name, module in sys.modules.items()
                if name.startswith("dispatcher.cli") and getattr(module, "clock", None)
                is system_clock]

    def at(moment: datetime) -> None:
        for module in commands:
            monkeypatch.setattr(module, "clock", lambda: moment)

    return at


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """An SMTP server on 127.0.0.1 that keeps what it accepts; yields it and its port."""
    with smtp_server() as (sink, port, _):
        yield sink, port


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeTwilio, str]]:
    """A Twilio-speaking server on 127.0.0.1 and the credentials the SDK needs."""
    for name, value in TWILIO_ENV.items():
        monkeypatch.setenv(name, value)
    with twilio_server() as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright (its own browser downloads cannot be fetched
    here), for one test module: Playwright's sync API holds the thread's event loop, so
    the module's tests run commands in their own processes."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
