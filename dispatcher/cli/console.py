"""`console` (the operator's console, without the scheduler) and `user add|passwd|remove|list`."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    clock,
    opened_ledger,
    out,
    read_ledger,
    run_async,
)
from dispatcher.table import Config, jp_datetime, load_config

if TYPE_CHECKING:
    from dispatcher.web import Users

# dispatcher.web (Starlette, uvicorn, argon2) is imported by these commands only, so that
# every other command starts without it.

DEFAULT_LISTEN = ("127.0.0.1", 8025)
STOP_TIMEOUT_SECONDS = 30.0  # the background sends' time to finish what is in flight
user_app = typer.Typer(help="The console's users (argon2id hashes in [console] users_file).",
                       no_args_is_help=True, rich_markup_mode=None)


@user_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Add a console user, or set a new password (ending their sessions); asks for the
    password twice."""
    users = _users(config)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    added = users.add(name, password)
    out.print(f"{'added' if added else 'new password for'} {name} in {users.path}"
              f"{'' if added else '; their sessions have ended'}", markup=False)


@user_app.command("passwd")
def change_password(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """A new password for an existing user; their sessions end at once."""
    users = _users(config)
    users.version_of(name)  # no such user: refused before asking for a password
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    users.set_password(name, password)
    out.print(f"new password for {name}; their sessions have ended", markup=False)


@user_app.command("remove")
def remove_user(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Remove a console user; their sessions end at once."""
    users = _users(config)
    users.remove(name)
    out.print(f"removed {name} from {users.path}; their sessions have ended", markup=False)


@user_app.command("list")
def list_users(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Each console user, with their last login (from the audit log)."""
    cfg = load_config(config)
    names = _users(config).names()
    none: dict[str, datetime] = {}
    logins = run_async(read_ledger(cfg, lambda ledger: ledger.last_logins(), none)) if names \
        else none
    tz = cfg.settings.timezone
    for name in names:
        last = logins.get(name)
        seen = f"last login {jp_datetime(last.astimezone(tz))}" if last else "never logged in"
        out.print(f"{name}  {seen}", markup=False)
    if not names:
        out.print("no users yet: add one with `dispatcher user add NAME`", markup=False)


def _users(config: Path) -> Users:
    from dispatcher.web import Users

    cfg = load_config(config)
    assert cfg.console is not None
    return Users(cfg.console.users_file)


def console(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Serve the operator's console on [http] listen (default 127.0.0.1:8025), without
    the scheduler: for looking, with the actions still available."""
    cfg = load_config(config)
    run_async(_serve(cfg))


async def _serve(cfg: Config) -> None:
    from dispatcher.web import Console, WebServer, make_app

    host, port = (cfg.http.host, cfg.http.port) if cfg.http.enabled else DEFAULT_LISTEN
    assert host is not None
    public_url = cfg.http.public_url or f"http://{host}:{port}"
    async with opened_ledger(cfg) as ledger:
        console_app = Console.of(cfg, ledger, clock, public_url.startswith("https://"))
        app = make_app(public_url, None, console_app, cfg.publish.path,
                       proxies_named=bool(cfg.http.trusted_proxies))
        server = WebServer(app, host, port,
                           trusted_proxies=cfg.http.trusted_proxies)
        await server.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        out.print(f"console: http://{host}:{port}/ (Ctrl-C stops it)", markup=False)
        try:
            await stopping.wait()
        finally:
            await console_app.close(STOP_TIMEOUT_SECONDS)
            await server.stop()
