"""The operators told of each overrun once: when a work's end in force (the table's, then
each extension's) passes ``overrun_after_minutes`` without `done`, one log line from this
daemon and one alert to each ``[alerts]`` address (the ledger claims each address once,
across restarts and daemons). The merchants' overrun notice is a notice like the others:
it goes once, at the first overrun."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dispatcher.daemon.sends import BackendFactory
from dispatcher.ledger import Ledger
from dispatcher.logs import event, failure
from dispatcher.send import Backends, overrun_alert, send_alert
from dispatcher.table import Config, Overrun, Phase, Window, WorkReports, overruns

log = logging.getLogger("dispatcher.daemon")


@dataclass
class OverrunWatch:
    backends: BackendFactory
    env: Mapping[str, str]
    seen: set[str] = field(default_factory=set)  # the overruns this daemon logged
    alerting: set[asyncio.Task[None]] = field(default_factory=set)

    def look(self, config: Config, windows: Iterable[Window], active: Mapping[str, str],
             reports: WorkReports, ledger: Ledger, now: datetime) -> None:
        """Log and alert each overrun seen for the first time at ``now`` (the alerts go
        in the background: a slow provider does not hold the daemon's look)."""
        after = timedelta(minutes=config.settings.overrun_after_minutes)
        for overrun in overruns(windows, active, reports, after, now):
            if overrun.key in self.seen:
                continue
            self.seen.add(overrun.key)
            event(log, logging.WARNING, "work overrunning: its end passed without done",
                  window=overrun.window.number, slot=overrun.slot.name,
                  end=overrun.due_end, extensions=overrun.extensions)
            task = asyncio.create_task(self._alert(config, overrun, ledger, now))
            self.alerting.add(task)
            task.add_done_callback(self.alerting.discard)

    async def wait(self) -> None:
        """Until the alerts started so far were sent (or failed)."""
        while self.alerting:
            await asyncio.gather(*self.alerting, return_exceptions=True)

    async def _alert(self, config: Config, overrun: Overrun, ledger: Ledger,
                     now: datetime) -> None:
        """Tell the ``[alerts]`` addresses of the overrun, each once (never raises: a
        failure is logged, and recorded in the ledger per address)."""
        channels = sorted({channel for channel, _ in config.alerts.addresses()})
        if not channels:
            return
        try:
            record = await ledger.notice(overrun.window.id, overrun.slot.name,
                                         Phase.OVERRUN.value)
            # the merchants' overrun notice goes once: made before this end passed, it went
            told_before = record is not None and record.created_at < overrun.due_end
            async with Backends(self.backends(config, channels, self.env)) as backends:
                await send_alert(config, ledger, backends,
                                 overrun_alert(config, overrun, told_before), now)
        except Exception as exc:  # a ledger away, a missing credential: logged, not retried
            failure(log, "operator alert failed", exc, overrun=overrun.key,
                    error=f"{type(exc).__name__}: {exc}")
