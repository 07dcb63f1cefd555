"""The one notice value: one phase of one window's slot, and the key that names it."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.errors import ArgumentError, single
from dispatcher.table.windows import Phase, Slot, Window, following_slot


@dataclass(frozen=True)
class Notice:
    """What is announced: one phase of one window's slot. Sent at most once; ``key`` names
    it in the ledger. ``new_slot`` is the slot a ``postponed`` notice moves the work to."""

    window: Window
    slot: Slot
    phase: Phase
    new_slot: Slot | None = None

    @property
    def key(self) -> str:
        return notice_key(self.window.id, self.slot.name, self.phase)


def notice_key(window_id: str, slot: str, phase: str) -> str:
    """The ledger's unique name of a notice: ``2021-07-19-emoney/planned/start``."""
    return f"{window_id}/{slot}/{phase}"


def build_notice(window: Window, slot: Slot, phase: Phase, new_slot: Slot | None = None
                 ) -> Notice:
    """The notice of ``phase`` for ``slot``; a postponed notice names ``new_slot``, by
    default the next reserve slot."""
    if phase is not Phase.POSTPONED:
        return Notice(window, slot, phase)
    new_slot = new_slot or following_slot(window, slot)
    if new_slot is None:
        raise single(ArgumentError, f"window {window.number}",
                     f"no reserve slot after {slot.name} to postpone to")
    return Notice(window, slot, phase, new_slot)
