"""Shared fixtures: a copy of the shipped project in a temporary folder, and a CLI runner."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatcher.cli import main
from dispatcher.config import load_config
from dispatcher.ledger import Ledger, engine_url

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@contextlib.asynccontextmanager
async def project_ledger(config_path: Path) -> AsyncIterator[Ledger]:
    """The ledger named by the project's config, opened for a test to read."""
    config = load_config(config_path)
    ledger = await Ledger.open(engine_url(config.settings.ledger_url, config_path.parent))
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server from initdb for the whole test session."""
    from tests.servers import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped config.toml, contacts/ and templates/; returns the config path."""
    for folder in ("contacts", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
        ) -> Callable[..., Result]:
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
