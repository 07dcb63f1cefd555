"""The entry point: the commands registered in the order `--help` lists them, and bad
input turned into one clear message and exit code 2."""

from __future__ import annotations

import logging
import sys

from dispatcher.cli import (
    checking,
    console,
    night_report,
    preview,
    publishing,
    reach,
    running,
    sending,
    starter,
    views,
    work,
)
from dispatcher.cli.app import app
from dispatcher.cli.receipt_commands import receipts_app, secret_app
from dispatcher.cli.suppress import suppress_app
from dispatcher.errors import DispatcherError, InputError, Interrupted

app.command("init")(starter.init)
for command in (views.windows, checking.check, preview.preview, sending.send, views.status,
                sending.retry, sending.postpone, work.done, work.extend, work.update,
                running.run, running.demo):
    app.command()(command)
app.command("unreached")(reach.unreached_contacts)
app.command("report")(night_report.night_report)
app.command("confirm")(reach.confirm)
app.command("publish")(publishing.publish_files)
app.command("console")(console.console)
app.add_typer(console.user_app, name="user")
app.add_typer(receipts_app, name="receipts")
app.add_typer(secret_app, name="secret")
app.add_typer(suppress_app, name="suppress")


def main() -> None:
    """Console entry point: bad input becomes one clear message and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(130)
    except DispatcherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
