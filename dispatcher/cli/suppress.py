"""`suppress list|remove`: the addresses not sent to again (a dead mailbox, a number that
replied STOP), which contacts still use them, and taking one off the list (audited)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer
from rich.table import Table

from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    clock,
    opened_ledger,
    out,
    print_json,
    run_async,
)
from dispatcher.cli.sending import operator
from dispatcher.errors import ArgumentError, single
from dispatcher.ledger import Suppression
from dispatcher.table import Channel, Config, Contact, jp_datetime, load_inputs, phone_number

suppress_app = typer.Typer(help="Addresses not sent to again: dead mailboxes (hard "
                                "bounces) and numbers that replied STOP or 停止.",
                           no_args_is_help=True, rich_markup_mode=None)


def suppressed_json(entries: list[Suppression], contacts: tuple[Contact, ...]
                    ) -> list[dict[str, Any]]:
    """Each entry, with the contacts whose address it is (to correct or to phone)."""
    users: dict[tuple[str, str], list[str]] = {}
    for contact in contacts:
        for channel in Channel:
            address = contact.address(channel)
            if address:
                users.setdefault((channel.value, address), []).append(contact.id)
    return [{"channel": e.channel, "address": e.address, "reason": e.reason,
             "detail": e.detail, "source": e.source, "at": e.at,
             "contacts": users.get((e.channel, e.address), [])} for e in entries]


@suppress_app.command("list")
def list_suppressed(as_json: JsonOption = False, config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Every suppressed address, why and since when, and the contacts that use it."""
    inputs = load_inputs(config)
    entries = suppressed_json(run_async(_entries(inputs.config)), inputs.contacts)
    if as_json:
        print_json(entries, inputs.config.settings.timezone)
        return
    if not entries:
        out.print("no address is suppressed", markup=False)
        return
    tz = inputs.config.settings.timezone
    table = Table("channel", "address", "reason", "since", "contacts")
    for entry in entries:
        since = jp_datetime(entry["at"].astimezone(tz))
        table.add_row(entry["channel"], entry["address"], entry["reason"], since,
                      ", ".join(entry["contacts"]) or "-")
    out.print(table)


@suppress_app.command("remove")
def remove(
    address: Annotated[str, typer.Argument(help="The address or number, as listed.")],
    channel: Annotated[Channel | None, typer.Option(
        help="Only on this channel (default: every channel it is suppressed on).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Send to the address again (it was corrected, or the merchant asked); audited."""
    inputs = load_inputs(config)
    removed = run_async(_remove(inputs.config, address, channel))
    out.print(f"{address}: off the suppression list on {', '.join(removed)}", markup=False)


async def _entries(config: Config) -> list[Suppression]:
    async with opened_ledger(config) as ledger:
        return await ledger.suppressions()


async def _remove(config: Config, address: str, channel: Channel | None) -> list[str]:
    async with opened_ledger(config) as ledger:
        entries = await ledger.suppressions()
        wanted = _spellings(address)
        found = [e for e in entries if e.address in wanted
                 and (channel is None or e.channel == channel.value)]
        if not found:
            raise single(ArgumentError, "ADDRESS", f"{address!r} is not suppressed"
                         f"{f' on {channel.value}' if channel else ''} (see `dispatcher "
                         "suppress list`)")
        for entry in found:
            await ledger.unsuppress(entry.channel, entry.address)
            await ledger.audit(operator(), "unsuppress", "",
                               {"channel": entry.channel, "address": entry.address,
                                "was": entry.reason}, clock())
        return [e.channel for e in found]


def _spellings(address: str) -> set[str]:
    """The ways the ledger may hold ``address``: as typed, lower-cased, as E.164."""
    found = {address.strip(), address.strip().lower()}
    with contextlib.suppress(ValueError):  # not a number: an e-mail address
        found.add(phone_number(address, mobile=False))
    return found
