"""`receipts read-mail`: bounces, delay warnings, success DSNs and fax gateway results read
from files, matched to their deliveries and, with --apply, recorded in the ledger; and
`secret rotate`, a new key for the tokens that link those reports to deliveries."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from dispatcher.cli.app import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    clock,
    out,
    print_json,
    read_ledger,
    run_async,
)
from dispatcher.keys import KeyFile
from dispatcher.ledger import Applied, ForgedReport, Ledger, engine_url, may_exist
from dispatcher.receipts import MailMatcher, MailResult, mails_in, read_bounce, read_mails
from dispatcher.send import DeliveryTokens
from dispatcher.table import Config, jp_datetime, load_config

receipts_app = typer.Typer(help="What came back after the providers took the messages.",
                           no_args_is_help=True, rich_markup_mode=None)

secret_app = typer.Typer(help="The key that signs every token linking a report to a "
                              "delivery ([receipts] secret_file).", no_args_is_help=True,
                         rich_markup_mode=None)

_BATCH = 500


@secret_app.command("rotate")
def rotate_secret(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Make a new key; the old one still verifies reports for [receipts] old_secret_days."""
    cfg = load_config(config)
    receipts = cfg.receipts
    keys = KeyFile(receipts.secret_file).rotate(clock(), timedelta(days=receipts.old_secret_days))
    out.print(f"new key in {receipts.secret_file}; {len(keys.retired)} retired key(s) still "
              f"verify for {receipts.old_secret_days:g} days after their rotation "
              "(a running daemon reads the file again by itself)", markup=False)


@receipts_app.command("read-mail")
def read_mail(
    paths: Annotated[list[Path], typer.Argument(help="An .eml, an mbox or a Maildir.")],
    apply: Annotated[bool, typer.Option(
        "--apply", help="Record what the mails say in the ledger.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Read returned mails (bounces, delays, success DSNs, fax gateway results) and match
    each to its delivery; nothing changes in the ledger without --apply."""
    cfg = load_config(config)
    mails = mails_in(paths)
    first = list(islice(mails, 1))  # a missing path is an error before anything is read
    tally = run_async(_read(cfg, _chain(first, mails), apply, as_json))
    if not as_json:
        _print_summary(tally, apply)


@receipts_app.command("forged")
def forged_reports(as_json: JsonOption = False, config: ConfigOption = DEFAULT_CONFIG) -> None:
    """The reports kept because their token did not verify (newest first): forged bounces
    and made-up Twilio callbacks. None of them changed a delivery."""
    cfg = load_config(config)
    kept: list[ForgedReport] = run_async(read_ledger(cfg, lambda ledger: ledger.forged(), []))
    tz = cfg.settings.timezone
    if as_json:
        print_json([{"source": f.source, "claimed": f.claimed, "detail": f.detail,
                     "received_at": f.received_at} for f in kept], tz)
        return
    for report in kept:
        at = jp_datetime(report.received_at.astimezone(tz)) if report.received_at else "-"
        out.print(f"{at}  {report.source}: {report.claimed} ({report.detail})", markup=False,
                  soft_wrap=True)
    out.print(f"{len(kept):,} forged report(s) kept; none changed a delivery", markup=False)


async def _read(cfg: Config, mails: Iterable[tuple[str, bytes]], apply: bool, as_json: bool
                ) -> Counter[str]:
    url = engine_url(cfg.settings.ledger_url, cfg.path.parent)
    ledger = await Ledger.open(url) if apply or may_exist(url) else None
    tally: Counter[str] = Counter()
    try:
        matcher = MailMatcher(ledger, cfg, DeliveryTokens.of(cfg)) if ledger is not None else None
        iterator = iter(mails)
        while batch := list(islice(iterator, _BATCH)):
            results = await _results(batch, matcher)
            applied = await _apply(ledger, results) if apply and ledger else {}
            for result in results:
                _show(result, applied.get(id(result)), as_json)
                tally.update(_tally_keys(result, applied.get(id(result))))
    finally:
        if ledger is not None:
            await ledger.close()
    return tally


async def _results(batch: list[tuple[str, bytes]], matcher: MailMatcher | None
                   ) -> list[MailResult]:
    if matcher is None:
        return [MailResult(name, read_bounce(raw), None, None, None) for name, raw in batch]
    return await read_mails(batch, matcher, "mail-file")


async def _apply(ledger: Ledger, results: list[MailResult]) -> dict[int, Applied]:
    reported = [r for r in results if r.report is not None]
    outcomes = await ledger.apply_reports([r.report for r in reported if r.report], clock())
    await ledger.record_forged([r.forged_report for r in results if r.forged_report],
                               clock())
    await ledger.suppress([s for r in results if (s := r.suppression(clock())) is not None])
    return {id(r): applied for r, applied in zip(reported, outcomes, strict=True)}


def _show(result: MailResult, applied: Applied | None, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        return
    reading = result.reading
    parts = [f"{result.name}: {reading.kind.value}"]
    parts += [f"{r.status or '-'} {r.address}" for r in reading.recipients[:3]]
    if result.forged:
        parts.append("→ forged token: recorded, moves nothing")
    elif result.delivery is not None:
        state = result.report.state.value if result.report and result.report.state else "event"
        parts.append(f"→ delivery {result.delivery.id} ({result.delivery.channel} "
                     f"{result.delivery.address}): {state}"
                     + (f" [{applied.value}]" if applied else ""))
    out.print(" ".join(parts), markup=False, soft_wrap=True)


def _tally_keys(result: MailResult, applied: Applied | None) -> list[str]:
    keys = ["read", result.reading.kind.value]
    if result.delivery is not None:
        keys.append("matched")
    if result.forged:
        keys.append("forged")
    if applied is not None:
        keys.append(f"applied:{applied.value}")
    return keys


def _print_summary(tally: Counter[str], apply: bool) -> None:
    kinds = ", ".join(f"{tally[k]} {k}" for k in ("bounce", "delay", "delivered",
                                                  "not-a-bounce") if tally[k])
    line = f"read {tally['read']:,} mails ({kinds or 'none'}); {tally['matched']:,} matched"
    if tally["forged"]:
        line += f"; {tally['forged']:,} with a forged token (moving nothing)"
    if apply:
        changes = ", ".join(f"{tally[f'applied:{a.value}']:,} {a.value}" for a in Applied
                            if tally[f"applied:{a.value}"])
        line += f"; ledger: {changes or 'nothing to record'}"
    else:
        line += "; nothing written (add --apply to record)"
    out.print(line, markup=False, soft_wrap=True)


def _chain(first: list[tuple[str, bytes]], rest: Iterator[tuple[str, bytes]]
           ) -> Iterator[tuple[str, bytes]]:
    yield from first
    yield from rest
