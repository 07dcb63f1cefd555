"""What the daemon asks of a table before it takes it in: every message renders, the
credentials its broadcast channels need are set, and it agrees with the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from dispatcher.clock import Clock
from dispatcher.errors import ConfigError, DispatcherError, InputError, Problem
from dispatcher.ledger import Ledger
from dispatcher.logs import event
from dispatcher.render import check_inputs
from dispatcher.send import check_credentials
from dispatcher.table import Inputs, Window


def ready_to_send(clock: Clock, env: Mapping[str, str]) -> Callable[[Inputs], None]:
    """The check of a table beyond its files' validity (InputError): every template
    renders, and the credentials its broadcast channels need are set."""
    def check(inputs: Inputs) -> None:
        problems = check_inputs(inputs, clock())
        if problems:
            raise InputError(problems)
        broadcast = {c for w in inputs.config.windows if w.broadcast for c in w.channels}
        check_credentials(inputs.config, broadcast, env)
    return check


async def record_set_aside(ledger: Ledger, inputs: Inputs, at: datetime) -> None:
    """Write the rows the table in force set aside, for `status` and the console; a
    failure to write them is logged, never in the way of sending."""
    try:
        await ledger.replace_set_aside(inputs.set_aside, at)
    except (DispatcherError, SQLAlchemyError, OSError) as exc:
        event(logging.getLogger("dispatcher.daemon"), logging.ERROR,
              "the contacts rows set aside could not be written to the ledger",
              error=str(exc), rows=len(inputs.set_aside))


def warn_of_set_aside(inputs: Inputs) -> None:
    """A WARNING line for each contacts row set aside as invalid (left out of every
    audience: those merchants hear nothing until it is corrected), and each name as Excel
    mangled it."""
    log = logging.getLogger("dispatcher.daemon")
    for row in inputs.set_aside:
        event(log, logging.WARNING, "contact row set aside as invalid, not sent to",
              row=row.source, contact=row.id, merchant=row.merchant, problem=row.reason)
    for warning in inputs.contact_warnings:
        event(log, logging.WARNING, "contact name to correct", problem=warning)


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
