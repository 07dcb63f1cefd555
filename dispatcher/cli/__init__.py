"""The command line (Typer): parse, call below, print; one module per group of commands."""

from dispatcher.cli.app import app
from dispatcher.cli.main import main

__all__ = ["app", "main"]
