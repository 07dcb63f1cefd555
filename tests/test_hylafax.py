"""The hylafax backend against HylaFAX's own hfaxd and faxq, started from a spool here."""

from __future__ import annotations

import asyncio
import json
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
