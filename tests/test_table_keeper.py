"""One table per process (``TableKeeper``): whatever sequence of edits, good or broken, the
table in force is the last good one, and ``rejected`` says why exactly while the last
edit is a broken one."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dispatcher.table import TableKeeper
from tests.helpers import ROOT

TITLE = 'title = "J-Mups センター 電子マネー メンテナンス (1)"'


class Edits(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="keeper-"))
        for name in ("contacts", "templates"):
            shutil.copytree(ROOT / name, self.folder / name)
        self.config = self.folder / "config.toml"
        self.original = (ROOT / "config.toml").read_text(encoding="utf-8")
        self.edits = 0
        self.keeper = TableKeeper(self.config)
        self.good_title = ""
        self.a_good_edit()
        asyncio.run(self.keeper.refresh())

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self, text: str) -> None:
        # every edit is longer than the one before: its marks differ, however fast the
        # edits follow each other (a file's change time may not move within a tick)
        self.edits += 1
        self.config.write_text(f"{text}\n# {'x' * self.edits}\n", encoding="utf-8")

    @rule()
    def a_good_edit(self) -> None:
        self.good_title = f"改訂 {self.edits + 1}"
        self._write(self.original.replace(TITLE, f'title = "{self.good_title}"', 1))
        self.last_broken = False

    @rule(breakage=st.sampled_from([
        ("end = 2021-07-19T02:00:00", "end = 2021-07-19T00:00:00"),
        ('notify = "broadcast"', 'notify = "sometimes"'),
        ('timezone = "Asia/Tokyo"', 'timezone = "Mars/Olympus"'),
        ("[channels.email]", "[channels.email]\nport = 587")]))
    def a_broken_edit(self, breakage: tuple[str, str]) -> None:
        before, after = breakage
        assert before in self.original and TITLE in self.original
        broken = self.original.replace(TITLE, 'title = "壊れた編集"', 1)
        self._write(broken.replace(before, after, 1))
        self.last_broken = True

    @rule()
    def a_look(self) -> None:
        asyncio.run(self.keeper.refresh())

    @invariant()
    def the_table_in_force_is_the_last_good_edit_once_looked_at(self) -> None:
        looked = asyncio.run(self.keeper.refresh())
        assert looked is self.keeper.inputs
        assert looked.config.windows[0].title == self.good_title
        if self.last_broken:
            assert self.keeper.rejected, "a broken edit says why it is not in force"
        else:
            assert self.keeper.rejected == ()
        assert self.keeper.edit_seen() is None  # nothing left unread


TestEdits = Edits.TestCase
TestEdits.settings = settings(max_examples=25, stateful_step_count=8, deadline=None)
