"""`init DIR`: a starting table of one's own: a commented config.toml with one broadcast
window a month ahead, a contacts file with its header and two rows, and a copy of the
shipped templates. `check` passes on it, and `run` runs it, sending to the outbox only."""

from __future__ import annotations

import shutil
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from dispatcher.cli.app import clock, out
from dispatcher.errors import ArgumentError, single

SHIPPED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ZONE = ZoneInfo("Asia/Tokyo")

CONTACTS = """id,merchant,name,fax,email,sms,tags
C0001,さくら書店 本店,店長 佐藤 一郎,03-5551-1037,incident-c0001@example.jp,090-1001-5013,shops
C0002,ひまわりベーカリー,山田 花子,03-5552-1074,incident-c0002@example.jp,090-1002-5026,shops
"""

CONFIG = """\
# Your maintenance table, written by `dispatcher init` ({made}).
# Check it with `dispatcher check`, look at a notice with
# `dispatcher preview 1 start --contact C0001`, run it with `dispatcher run`.
# Times without an offset are in [dispatcher].timezone. Every key: README, "Configuration".

[dispatcher]
timezone = "Asia/Tokyo"
contacts = "contacts"          # every *.csv here (UTF-8, or CP932 as Excel saves it)
templates = "templates"        # the messages, in Japanese; edit them to your words
ledger = "sqlite:///var/ledger.sqlite3"
# announce_days_before = 14    # an advance notice (予告) two weeks ahead …
# announce_at = "10:00"        # … at 10:00 on that day

# Reminders before the work starts, per channel (none unless asked):
# [reminders]
# email = ["24h"]              # the day before, at the work's time of day

[sender]
organisation = "株式会社サンプル"    # who sends the notices
service = "サンプルPay"              # the service maintained, as merchants know it
website = "https://example.jp"
# centre = "サンプルPay センター"   # what the notices call it (default: service + センター)

[helpdesk]
name = "サンプルPay ヘルプデスク"
phone = "0120-000-000"
hours = "平日 9:00～18:00"

# 影響内容: what merchants cannot use while the work is in progress (a window may name
# its own with affected_services = ["…"]).
[[affected_services]]
name = "クレジットカード決済取引"

[[windows]]
number = 1
id = "{window_id}"                # never change it once notices went out
title = "サンプルPay センター メンテナンス"
start = {start}
end = {end}
impact = "作業中は約1時間、クレジットカード決済がご利用いただけません"
notify = "broadcast"               # "none": in the table, nobody is told
channels = ["fax", "email", "sms"]
audience = ["shops"]               # contacts with any of these tags; [] = everyone
  [[windows.reserve]]              # 予備日: `dispatcher postpone 1` moves the work here
  start = {reserve_start}
  end = {reserve_end}

# Each channel's backend. "outbox" writes every message as a file under `path`, so
# nothing leaves this machine until you choose a real one (README, "Channels": smtp,
# twilio, hylafax, email_gateway).
[channels.fax]
backend = "outbox"
path = "var/outbox/fax"

[channels.email]
backend = "outbox"
path = "var/outbox/email"
from = "サンプルPay センター <maintenance@example.jp>"

[channels.sms]
backend = "outbox"
path = "var/outbox/sms"
"""


def starter_config(now: datetime) -> str:
    """The starting config.toml: its window a month after ``now``, 01:00–02:00 local
    time (a Tuesday night, as maintenance often is), its reserve a week later."""
    local = now.astimezone(ZONE)
    day = local.date() + timedelta(days=30)
    day += timedelta(days=(1 - day.weekday()) % 7)  # the next Tuesday
    start = datetime.combine(day, time(1))
    reserve = start + timedelta(days=7)
    hour = timedelta(hours=1)
    return CONFIG.format(made=f"{local:%Y-%m-%d}", window_id=f"{day:%Y-%m-%d}-maintenance",
                         start=start.isoformat(), end=(start + hour).isoformat(),
                         reserve_start=reserve.isoformat(),
                         reserve_end=(reserve + hour).isoformat())


def init(folder: Annotated[Path, typer.Argument(
        help="Where to write the table (made if missing; never overwritten).")]) -> None:
    """Write a starting table: a commented config.toml with one broadcast window a month
    ahead, contacts/contacts.csv with two rows, and the shipped templates."""
    config = folder / "config.toml"
    taken = [p for p in (config, folder / "contacts", folder / "templates") if p.exists()]
    if taken:
        raise single(ArgumentError, "DIR", f"{taken[0]} already exists: init writes a new "
                     "table and never overwrites one; choose an empty folder")
    if not SHIPPED_TEMPLATES.is_dir():
        raise single(ArgumentError, "DIR", f"the shipped templates are not at "
                     f"{SHIPPED_TEMPLATES}: run init from a clone of the repository")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SHIPPED_TEMPLATES, folder / "templates")
    (folder / "contacts").mkdir()
    (folder / "contacts" / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    config.write_text(starter_config(clock()), encoding="utf-8")
    out.print(f"wrote {config}, {folder / 'contacts' / 'contacts.csv'} and "
              f"{folder / 'templates'}/", markup=False)
    out.print(f"next: cd {folder} && dispatcher check && "
              "dispatcher preview 1 start --contact C0001", markup=False)
