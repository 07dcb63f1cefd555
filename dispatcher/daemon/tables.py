"""What the daemon reads from the files: a cheap fingerprint of them, to see an edit, and
the check that an edited table agrees with the ledger before it is taken in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from dispatcher.errors import ConfigError, Problem
from dispatcher.table import Inputs, Window

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(config_path: Path, inputs: Inputs | None) -> Fingerprint:
    """Names, sizes and change times of every file the daemon reads; cheap to compare."""
    paths = [config_path]
    if inputs is not None:
        settings = inputs.config.settings
        paths += sorted(settings.contacts_dir.glob("*.csv"))
        paths += sorted(p for p in settings.templates_dir.rglob("*") if p.is_file())
    marks = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        marks.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(marks)


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
