"""The hylafax backend against HylaFAX's own hfaxd and faxq, started from a spool here."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.servers import hylafax_server
from tests.test_send import _deliveries, configure

Cli = Callable[..., Result]


@pytest.fixture
def hylafax() -> Iterator[tuple[Path, int]]:
    with hylafax_server() as server:
        yield server


def fax_channels(port: int, kill_after: int = 1) -> str:
    return f"""
[channels.fax]
backend = "hylafax"
host = "127.0.0.1"
port = {port}
concurrency = 4
kill_after_minutes = {kill_after}
poll_seconds = 2
"""


def queued_jobs(spool: Path) -> list[dict[str, str]]:
    jobs = []
    for folder in ("sendq", "doneq"):
        for q in sorted((spool / folder).glob("q[0-9]*")):
            fields = dict(line.split(":", 1) for line in q.read_text().splitlines()
                          if ":" in line)
            jobs.append(fields)
    return jobs


def test_a_job_per_contact_then_failed_when_it_cannot_complete(
        cli: Cli, project: Path, hylafax: tuple[Path, int]) -> None:
    spool, port = hylafax
    configure(project, fax_channels(port))
    result = cli("send", "3", "start", "--channel", "fax", "--yes", "-c", str(project))
    jobs = queued_jobs(spool)
    assert len(jobs) == 27
    numbers = sorted(job["number"] for job in jobs)
    assert "+81355511037" in numbers and len(set(numbers)) == 27
    assert all(job["jobtag"].startswith("delivery-") for job in jobs)
    assert all(job["maxdials"] == "3" for job in jobs)
    documents = list((spool / "docq").glob("doc*.pdf*"))
    assert documents and all(d.read_bytes()[:5] == b"%PDF-" for d in documents)
    # No modem: each job stays queued until its kill time, then HylaFAX fails it.
    assert result.code == 1, result.out
    records = asyncio.run(_deliveries(project))
    assert len(records) == 27 and {r.state for r in records} == {"failed"}
    assert all(r.provider_ref and r.provider_ref.isdigit() for r in records)
    assert {r.last_error for r in records} == {"Kill time expired"}
    status = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
    assert status["notices"][0]["channels"] == {"fax": {"failed": 27}}


def tiff_width(path: Path) -> int:
    """ImageWidth (tag 256) of the first page of a TIFF file."""
    import struct
    data = path.read_bytes()
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    for n in range(count):
        entry = data[ifd + 2 + 12 * n:ifd + 14 + 12 * n]
        tag, kind, _, value = struct.unpack(order + "HHII", entry)
        if tag == 256:
            return value & 0xFFFF if kind == 3 and order == "<" else (
                value >> 16 if kind == 3 else value)
    raise ValueError("no ImageWidth")


def test_a_real_fax_transfer_between_two_iaxmodems(cli: Cli, project: Path) -> None:
    from tests.servers import fax_line
    from tests.test_send import use_contacts
    use_contacts(project, "F1,さくら書店 本店,佐藤,03-5551-1037,,,emoney\n")
    with fax_line() as (spool, port, modem):
        configure(project, fax_channels(port, kill_after=5) + f'modem = "{modem}"\n')
        result = cli("send", "3", "start", "--channel", "fax", "--yes", "-c", str(project))
        received = sorted((spool / "recvq").glob("fax*.tif"))
        info = subprocess.run(["faxinfo", str(received[0])], capture_output=True, text=True,
                              check=True).stdout if received else ""
        sessions = "".join(p.read_text(errors="replace") for p in (spool / "log").glob("c*"))
        widths = [tiff_width(path) for path in received]
    assert result.code == 0, result.out + result.err + sessions
    [record] = asyncio.run(_deliveries(project))
    assert record.state == "delivered"
    assert len(received) == 1
    assert "Pages: 1" in info and "Quality: Fine" in info, info
    assert widths == [1728]  # the width of an A4 (and Letter) fax page
