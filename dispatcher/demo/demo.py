"""`dispatcher demo`: the shipped table, shifted so that its broadcast window starts in about
20 seconds, run by the real daemon against an SMTP server started here on 127.0.0.1.

Everything lives in a new temporary folder (config, ledger, outboxes, received mail);
nothing outside it is touched, and no account is needed.
"""

from __future__ import annotations

import asyncio
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w

from dispatcher.daemon import Daemon
from dispatcher.demo.sink import MailSink, mail_server
from dispatcher.errors import DispatcherError
from dispatcher.schedule import Decision
from dispatcher.send import SendResult

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoPlan:
    folder: Path
    config: Path
    start: datetime
    end: datetime


def write_demo_config(source: Path, folder: Path, smtp_port: int, now: datetime,
                      start_in: timedelta, duration: timedelta) -> DemoPlan:
    """A copy of ``source`` whose first broadcast window runs from now + ``start_in``."""
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    base = source.parent.resolve()
    settings = data.setdefault("dispatcher", {})
    for key in ("contacts", "templates"):
        settings[key] = str(base / settings.get(key, key))
    settings["ledger"] = "sqlite:///var/ledger.sqlite3"
    # No advance notice (its time is weeks before), and one SMS reminder halfway to the start.
    settings["announce_days_before"] = 0
    data["reminders"] = {"sms": [f"{reminder_lead(start_in)}s"]}
    window = next(w for w in data["windows"] if w.get("notify") == "broadcast")
    start = (now + start_in).replace(microsecond=0)
    shift = start - _aware(window["start"], settings)
    window["start"], window["end"] = start, start + duration
    for reserve in window.get("reserve", []):
        reserve["start"] = _aware(reserve["start"], settings) + shift
        reserve["end"] = _aware(reserve["end"], settings) + shift
    channels = data.setdefault("channels", {})
    email = channels.setdefault("email", {})
    email.update({"backend": "smtp", "host": "127.0.0.1", "port": smtp_port,
                  "security": "none", "path": "var/outbox/email"})
    for name in ("sms", "fax"):
        channels.setdefault(name, {}).update({"backend": "outbox", "path": f"var/outbox/{name}"})
    config = folder / "config.toml"
    config.write_text(tomli_w.dumps(data), encoding="utf-8")
    return DemoPlan(folder, config, start, start + duration)


def reminder_lead(start_in: timedelta) -> int:
    """Seconds before the start the demo's reminder goes: half the wait, at least one."""
    return max(1, int(start_in.total_seconds() // 2))


def _aware(moment: datetime, settings: dict[str, Any]) -> datetime:
    from zoneinfo import ZoneInfo
    return moment if moment.tzinfo else moment.replace(
        tzinfo=ZoneInfo(settings.get("timezone", "Asia/Tokyo")))


async def run_demo(source: Path, say: Say, start_in: timedelta = timedelta(seconds=20),
                   duration: timedelta = timedelta(seconds=40)) -> DemoPlan:
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-demo-"))
    catcher = MailSink(folder / "received-mail")
    with mail_server(catcher) as port:
        return await _run(source, say, folder, port, catcher, start_in, duration)


async def _run(source: Path, say: Say, folder: Path, port: int, catcher: MailSink,
               start_in: timedelta, duration: timedelta) -> DemoPlan:
    plan = write_demo_config(source, folder, port, datetime.now(UTC), start_in, duration)
    finished: set[str] = set()

    def on_result(decision: Decision, result: SendResult) -> None:
        counts = ", ".join(f"{channel} {state} {n}" for (channel, state), n
                           in sorted(result.counts.items()))
        say(f"▶ {decision.notice.tag} notice of window {decision.window.number}: {counts}; "
            f"the SMTP server on 127.0.0.1:{port} has received {len(catcher)} e-mails so far")
        finished.add(decision.phase.value)

    def on_missed(decision: Decision) -> None:  # a machine too busy to start in time
        say(f"▶ {decision.notice.tag} notice of window {decision.window.number}: missed, "
            f"its time passed before the daemon was ready")
        finished.add(decision.phase.value)

    daemon = Daemon(plan.config, lambda: datetime.now(UTC), on_result=on_result,
                    on_missed=on_missed)
    say(f"demo folder: {folder}")
    say(f"window runs {plan.start.astimezone():%H:%M:%S}–{plan.end.astimezone():%H:%M:%S}; "
        f"the daemon sends an SMS reminder {reminder_lead(start_in)} s before the start, "
        f"then its start and end notices")
    runner = asyncio.create_task(daemon.run())
    try:
        await _until_every_notice(finished, runner, plan.end + DEMO_GRACE)
    finally:
        daemon.request_stop()
        await runner
    return plan


# The notices end the demo; the deadline only stops a demo that hangs. A busy machine can
# take minutes over 81 deliveries with 27 fax pages, so it is not a measure of speed.
DEMO_GRACE = timedelta(minutes=10)


DEMO_NOTICES = {"reminder", "start", "end"}


async def _until_every_notice(finished: set[str], runner: asyncio.Task[None],
                              deadline: datetime) -> None:
    while not finished >= DEMO_NOTICES:
        if runner.done():
            runner.result()  # the daemon's own error, if it stopped by one
            raise DispatcherError("the daemon stopped before its notices were sent")
        if datetime.now(UTC) > deadline:
            missing = ", ".join(sorted(DEMO_NOTICES - finished))
            raise DispatcherError(f"the {missing} notice did not finish within "
                                  f"{DEMO_GRACE} of the window's end")
        await asyncio.sleep(0.2)
