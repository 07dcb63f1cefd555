"""`run` and `demo`: the daemon, on the table or on the demo's copy of it."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer

from dispatcher import logs
from dispatcher.cli.app import DEFAULT_CONFIG, ConfigOption, clock, out, run_async
from dispatcher.table import (
    load_inputs,
)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def run(
    config: ConfigOption = DEFAULT_CONFIG,
    log_format: Annotated[LogFormat, typer.Option(help="text for people, json for machines.")
                          ] = LogFormat.TEXT,
) -> None:
    """The daemon: sends each broadcast window's notices on time."""
    from dispatcher.daemon import Daemon  # its web server and publisher: for run and demo only

    logs.configure(log_format.value)
    daemon = Daemon(config, clock)
    run_async(daemon.run())


def demo(
    config: ConfigOption = DEFAULT_CONFIG,
    start_in: Annotated[int, typer.Option(help="Seconds until the window starts.")] = 20,
    duration: Annotated[int, typer.Option(help="Seconds the window lasts.")] = 40,
) -> None:
    """Run the daemon on a copy of the table whose broadcast window starts in 20 s."""
    from dispatcher.demo import run_demo

    load_inputs(config)
    logs.configure("text")
    plan = run_async(run_demo(config, lambda line: out.print(line, markup=False),
                                timedelta(seconds=start_in), timedelta(seconds=duration)))
    folder = plan.folder
    out.print("done. Look at:", markup=False)
    for label, path in (("e-mails as received by the SMTP server", "received-mail"),
                        ("SMS (outbox)", "var/outbox/sms"), ("fax PDFs (outbox)", "var/outbox/fax"),
                        ("the ledger", "var/ledger.sqlite3"), ("the demo's table", "config.toml")):
        out.print(f"  {label}: {folder / path}", markup=False)
    out.print(f"  and: dispatcher status 3 -c {plan.config}", markup=False)
