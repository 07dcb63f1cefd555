"""The check that an edited table agrees with the ledger before the daemon takes it in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dispatcher.errors import ConfigError, Problem
from dispatcher.table import Inputs, Window


def off_their_slot(windows: Sequence[Window], active_slots: Mapping[str, str]
                   ) -> list[tuple[int, Window, str]]:
    """(position from 1, window, slot) of each window the ledger moved to a slot that the
    table does not have."""
    return [(index, window, active_slots[window.id])
            for index, window in enumerate(windows, start=1)
            if window.id in active_slots
            and active_slots[window.id] not in {s.name for s in window.slots}]


def agrees_with_ledger(inputs: Inputs, active_slots: Mapping[str, str]) -> None:
    """ConfigError if a window the ledger moved to a slot no longer has that slot."""
    problems = [
        Problem(f"{inputs.config.path}: windows[{index}]",
                f"window {window.number} was moved to slot {slot!r} (postpone), which the "
                f"table no longer has; put it back, or give the reserve slot id = \"{slot}\"")
        for index, window, slot in off_their_slot(inputs.config.windows, active_slots)]
    if problems:
        raise ConfigError(problems)
