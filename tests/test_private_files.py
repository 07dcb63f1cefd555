"""Contact data stays with its owner: the ledger (its WAL and shared memory too) and the
outbox are owner-only, and `check` warns about a ledger or key others can read."""

from __future__ import annotations

import re
import stat
from pathlib import Path, PurePosixPath

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.files import safe_file_name
from tests.helpers import CHECK_AT, Cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ledger_and_the_outbox_are_owner_only(cli: Cli, project: Path) -> None:
    sent = cli("send", "3", "start", "--channel", "email", "--channel", "sms", "--yes",
               "-c", str(project))
    assert sent.code == 0, sent.err
    var = project.parent / "var"
    ledger = var / "ledger.sqlite3"
    assert mode(ledger) == 0o600 and mode(var) == 0o700
    for companion in ("ledger.sqlite3-wal", "ledger.sqlite3-shm"):
        if (var / companion).exists():  # SQLite removes them when the last user closes
            assert mode(var / companion) == 0o600, companion
    messages = [p for p in (var / "outbox").rglob("*") if p.is_file()]
    assert len(messages) == 28 + 26
    assert {mode(p) for p in messages} == {0o600}
    folders = {p.parent for p in messages} | {var / "outbox", var / "outbox" / "email"}
    assert {mode(f) for f in folders} == {0o700}  # the parents made with them too


def test_check_warns_about_a_ledger_others_can_read(cli: Cli, project: Path) -> None:
    assert cli("send", "3", "start", "--channel", "email", "--yes", "-c", str(project)).code == 0
    ledger = project.parent / "var" / "ledger.sqlite3"
    assert "readable by other users" not in cli("check", *CHECK_AT, "-c", str(project)).out
    ledger.chmod(0o644)
    checked = cli("check", *CHECK_AT, "-c", str(project))
    assert checked.code == 0
    assert f"warning: {ledger} is readable by other users of this machine: chmod 600" \
        in checked.out


@given(st.text())
def test_a_file_name_made_from_any_text_stays_in_its_folder(text: str) -> None:
    """A contact's id or address, or a notice's key, as a file name: one name, in the
    folder it is written to, never hidden, and as long as the text."""
    name = safe_file_name(text)
    assert re.fullmatch(r"[A-Za-z0-9._+@-]*", name) and not name.startswith(".")
    assert len(name) == len(text) and PurePosixPath(name).name == name
