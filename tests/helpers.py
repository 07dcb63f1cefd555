"""What several test modules share: the project's paths and config edits, the CLI's result,
reading the ledger, building a backend and a rendered message, waiting for a condition.
Test modules import from here (and start servers through tests/servers.py), never from
each other."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatcher.ledger import DeliveryRecord, Ledger, engine_url
from dispatcher.render import FaxPages, Renderer
from dispatcher.send import Backend, Outgoing, make_backends
from dispatcher.table import Channel, Contact, Phase, build_notice, find_window, load_config

ROOT = Path(__file__).resolve().parent.parent
TOKYO = ZoneInfo("Asia/Tokyo")
CONTACTS_HEADER = "id,merchant,name,fax,email,sms,tags\n"
WINDOW_3 = "2021-07-19-emoney"
TWILIO_ENV = {"TWILIO_ACCOUNT_SID": "ACtest", "TWILIO_AUTH_TOKEN": "secret"}

FAST_RETRY = """
[retry]
initial_delay_seconds = 0.05
max_delay_seconds = 0.2
max_attempts = 3
"""


@dataclass(frozen=True)
class Result:
    """What one `dispatcher ...` run printed, and its exit code."""

    code: int
    out: str
    err: str


Cli = Callable[..., Result]


def configure(project: Path, channels: str, retry: str = "") -> None:
    """Replace the shipped [channels.*] tables of the project's config."""
    text = project.read_text(encoding="utf-8")
    text = text[: text.index("# Each channel's backend")]
    project.write_text(text + channels + retry, encoding="utf-8")


def real_channels(smtp_port: int, twilio_url: str, extra_email: str = "") -> str:
    """E-mail to a local SMTP server, SMS to a local Twilio-speaking one, fax by e-mail."""
    return f"""
[channels.email]
backend = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "J-Mups センター <maintenance@j-mups.example.jp>"
concurrency = 4
{extra_email}
[channels.sms]
backend = "twilio"
from = "+815012345678"
base_url = "{twilio_url}"
concurrency = 4

[channels.fax]
backend = "email-gateway"
gateway_address = "{{national}}@fax.example.jp"
concurrency = 2
"""


def use_contacts(project: Path, rows: str) -> None:
    """Replace the shipped contacts with ``rows`` (CSV lines without the header)."""
    folder = project.parent / "contacts"
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "test.csv").write_text(CONTACTS_HEADER + rows, encoding="utf-8")


@contextlib.asynccontextmanager
async def project_ledger(config_path: Path) -> AsyncIterator[Ledger]:
    """The ledger named by the project's config, opened for a test to read."""
    config = load_config(config_path)
    ledger = await Ledger.open(engine_url(config.settings.ledger_url, config_path.parent))
    try:
        yield ledger
    finally:
        await ledger.close()


async def deliveries(project: Path, window: str = WINDOW_3) -> list[DeliveryRecord]:
    """Every delivery of every notice of ``window`` in the project's ledger."""
    async with project_ledger(project) as ledger:
        notices = await ledger.notices_of(window)
        return [d for n in notices for d in await ledger.deliveries_of(n.id)]


def delivery_states(project: Path) -> list[str]:
    """The state of each delivery of window 3, read now (for polling from a sync test)."""
    return [str(d.state) for d in asyncio.run(deliveries(project))]


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Polls ``condition`` until it holds; ``seconds`` is a generous bound against a hang,
    never a measure of speed."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {seconds} s")
        time.sleep(0.05)


def backend_from(project: Path, channel: Channel, table: str) -> Backend:
    """The backend ``table`` selects, built from the project's config as the CLI builds it."""
    configure(project, table)
    return make_backends(load_config(project), [channel], TWILIO_ENV)[channel]


async def outgoing(project: Path, channel: Channel, address: str) -> Outgoing:
    """Window 3's start notice for one contact, rendered as dispatch.py renders it."""
    config = load_config(project)
    window = find_window(config.windows, "3")
    sent_at = datetime.now(UTC)
    notice = build_notice(window, window.planned, Phase.START)
    addresses = {c: address if c is channel else None for c in Channel}
    contact = Contact("K1", "さくら書店", "佐藤", addresses[Channel.FAX],
                      addresses[Channel.EMAIL], addresses[Channel.SMS], frozenset(), "k.csv:2")
    message = Renderer(config.settings.templates_dir, config).render(notice, contact, channel,
                                                                     sent_at)
    document = (FaxPages(config.settings.templates_dir).render(message.body)
                if channel is Channel.FAX else None)
    return Outgoing(1, notice.key, message, "<k1@example.jp>", sent_at,
                    1, "dispatcher-1-0123456789ab", document)
