"""One contract, every backend: what dispatch.py relies on, checked against the real thing.

Each backend is built from a `[channels.*]` table by `make_backends`, as the CLI builds it,
and talks to a real local server (aiosmtpd, the Twilio-speaking HTTP server, hfaxd) or
writes its outbox. The contract:
- a message is accepted once, with the provider's reference; ``confirms_later`` backends
  say ``submitted``, the others ``sent``;
- a provider that cannot be reached (or an outbox that cannot be written) is a
  TransientError naming the recipient;
- a recipient the provider refuses for good is a PermanentError with the provider's code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatcher.demo import free_port
from dispatcher.errors import PermanentError, TransientError, UncertainError
from dispatcher.send import Backend, Receipt, gateway_recipient
from dispatcher.table import Channel
from tests.helpers import backend_from, outgoing
from tests.servers import hylafax_server, queued_jobs, smtp_server, twilio_server

GATEWAY = "{number}@fax.example.jp"
GOOD = {Channel.EMAIL: "sato@example.jp", Channel.SMS: "+819012345678",
        Channel.FAX: "+81355511037"}


@dataclass
class Provider:
    """The servers (or the outbox folder) behind one kind of backend."""

    channel: Channel
    table: str  # the [channels.*] tables that select and configure the backend
    arrived: Callable[[str], int]
    unreachable_table: str
    refused: tuple[str, str] | None = None


def _outbox(channel: Channel, folder: Path) -> Provider:
    def arrived(address: str) -> int:
        return sum(1 for path in folder.rglob("*") if path.is_file() and address in path.name)
    blocker = folder.parent / "not-a-folder"
    blocker.write_text("a file where the outbox folder should be")
    return Provider(channel, f'[channels.{channel}]\nbackend = "outbox"\npath = "{folder}"\n',
                    arrived, f'[channels.{channel}]\nbackend = "outbox"\npath = "{blocker}/x"\n')


def _smtp_table(port: int) -> str:
    return (f'[channels.email]\nbackend = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
            'security = "none"\nfrom = "noreply@example.jp"\n')


@contextlib.contextmanager
def provider(kind: str, tmp_path: Path) -> Iterator[Provider]:
    if kind.startswith("outbox-"):
        yield _outbox(Channel(kind.removeprefix("outbox-")), tmp_path / "outbox")
    elif kind in ("smtp", "email-gateway"):
        with smtp_server() as (sink, port, _):
            if kind == "smtp":
                yield Provider(Channel.EMAIL, _smtp_table(port),
                               lambda a: sink.recipients().count(a),
                               _smtp_table(free_port()), ("reject@example.jp", "550"))
            else:
                fax = f'[channels.fax]\nbackend = "email-gateway"\ngateway_address = "{GATEWAY}"\n'
                yield Provider(Channel.FAX, fax + _smtp_table(port),
                               lambda a: sink.recipients().count(gateway_recipient(GATEWAY, a)),
                               fax + _smtp_table(free_port()))
    elif kind == "twilio":
        with twilio_server() as (fake, url):
            def table(base: str) -> str:
                return (f'[channels.sms]\nbackend = "twilio"\nfrom = "+15005550006"\n'
                        f'base_url = "{base}"\n')
            yield Provider(Channel.SMS, table(url),
                           lambda a: sum(1 for form in fake.accepted if form["To"] == a),
                           table(f"http://127.0.0.1:{free_port()}"),
                           ("+819012341211", "21211"))
    else:
        with hylafax_server() as (spool, port):
            def fax(hfaxd: int) -> str:
                return f'[channels.fax]\nbackend = "hylafax"\nhost = "127.0.0.1"\nport = {hfaxd}\n'
            yield Provider(Channel.FAX, fax(port),
                           lambda a: sum(1 for job in queued_jobs(spool) if job["number"] == a),
                           fax(free_port()))


KINDS = ["outbox-email", "outbox-sms", "outbox-fax", "smtp", "twilio", "email-gateway",
         "hylafax"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def send_through(project: Path, channel: Channel, table: str, address: str
                       ) -> tuple[Backend, Receipt]:
    """Build the backend from ``table``, send window 3's start notice to ``address``, close."""
    backend = backend_from(project, channel, table)
    await backend.start()
    try:
        return backend, await backend.send(await outgoing(project, channel, address))
    finally:
        await backend.close()


async def test_a_message_is_accepted_once_with_the_providers_reference(
        kind: str, project: Path, tmp_path: Path) -> None:
    with provider(kind, tmp_path) as p:
        backend, receipt = await send_through(project, p.channel, p.table, GOOD[p.channel])
        assert receipt.provider_ref
        # Only HylaFAX's acceptance is not the end: its jobs are polled until they end.
        assert backend.confirms_later is (kind == "hylafax")
        assert p.arrived(GOOD[p.channel]) == 1


async def test_an_unreachable_provider_is_transient_and_names_the_recipient(
        kind: str, project: Path, tmp_path: Path) -> None:
    with provider(kind, tmp_path) as p:
        address = GOOD[p.channel]
        with pytest.raises(TransientError) as caught:
            await send_through(project, p.channel, p.unreachable_table, address)
        # The recipient as the provider knows it: the gateway's mailbox names the number.
        known_as = gateway_recipient(GATEWAY, address) if kind == "email-gateway" else address
        assert caught.value.recipient == known_as
        assert p.arrived(address) == 0


@pytest.mark.parametrize("refusing", ["smtp", "twilio"])
async def test_a_refused_recipient_is_permanent_with_the_providers_code(
        refusing: str, project: Path, tmp_path: Path) -> None:
    # Only providers that judge a recipient at once; the outbox accepts everything, and
    # HylaFAX reports a bad number when its job ends (tests/test_hylafax.py).
    with provider(refusing, tmp_path) as p:
        assert p.refused is not None
        address, code = p.refused
        with pytest.raises(PermanentError) as caught:
            await send_through(project, p.channel, p.table, address)
        assert (caught.value.code, caught.value.recipient) == (code, address)
        assert p.arrived(address) == 0


@pytest.mark.parametrize("number", ["+819012340200", "+819012340201"])
async def test_an_unreadable_answer_from_twilio_is_uncertain(
        number: str, project: Path, tmp_path: Path) -> None:
    # A 2xx that is not Twilio's JSON object (a proxy's page, an array): the message may
    # have gone out, so it is neither retried blindly nor called failed.
    with provider("twilio", tmp_path) as p:
        with pytest.raises(UncertainError) as caught:
            await send_through(project, p.channel, p.table, number)
        assert caught.value.recipient == number
        assert "unreadable" in str(caught.value)
