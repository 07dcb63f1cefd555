"""`console` (the operator's console, without the scheduler) and `user add NAME`."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from dispatcher.cli.app import DEFAULT_CONFIG, ConfigOption, clock, opened_ledger, out, run_async
from dispatcher.table import Config, load_config

# dispatcher.web (Starlette, uvicorn, argon2) is imported by these commands only, so that
# every other command starts without it.

DEFAULT_LISTEN = ("127.0.0.1", 8025)
STOP_TIMEOUT_SECONDS = 30.0  # the background sends' time to finish what is in flight
user_app = typer.Typer(help="The console's users (argon2id hashes in [console] users_file).",
                       no_args_is_help=True)


@user_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Add a console user, or set a new password; asks for the password twice."""
    from dispatcher.web import Users

    cfg = load_config(config)
    assert cfg.console is not None
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    users = Users(cfg.console.users_file)
    added = users.add(name, password)
    out.print(f"{'added' if added else 'new password for'} {name} in {users.path}",
              markup=False)


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
        server = WebServer(make_app(public_url, None, console_app, cfg.publish.path), host, port)
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
