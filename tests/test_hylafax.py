"""The hylafax backend against HylaFAX's own hfaxd and faxq, started from a spool here."""

from __future__ import annotations

import asyncio
import ftplib
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dispatcher.demo import free_port
from dispatcher.errors import ChannelError, PermanentError, TransientError
from dispatcher.send import Backend, fax_result
from dispatcher.send.channels.hylafax import job_failure, submit_error
from dispatcher.table import Channel
from tests.helpers import TOKYO, Cli, backend_from, configure, deliveries, outgoing, use_contacts
from tests.servers import fax_line, hylafax_server, lab_logs, queued_jobs


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


def test_a_job_per_contact_then_failed_when_it_cannot_complete(
        cli: Cli, project: Path, hylafax: tuple[Path, int]) -> None:
    spool, port = hylafax
    configure(project, fax_channels(port))
    result = cli("send", "3", "start", "--channel", "fax", "--yes", "-c", str(project))
    jobs = queued_jobs(spool)
    assert len(jobs) == 27
    numbers = sorted(job["number"] for job in jobs)
    assert "+81355511037" in numbers and len(set(numbers)) == 27
    assert all(re.fullmatch(r"dispatcher-\d+-[0-9a-f]{12}", job["jobtag"]) for job in jobs)
    assert all(job["maxdials"] == "3" for job in jobs)
    documents = list((spool / "docq").glob("doc*.pdf*"))
    assert documents and all(d.read_bytes()[:5] == b"%PDF-" for d in documents)
    # No modem: each job stays queued until its kill time, then HylaFAX fails it.
    assert result.code == 1, result.out
    records = asyncio.run(deliveries(project))
    assert len(records) == 27 and {r.state for r in records} == {"failed"}
    assert all(r.provider_ref and r.provider_ref.isdigit() for r in records)
    assert {r.last_error for r in records} == {"Kill time expired"}
    status = json.loads(cli("status", "3", "--json", "-c", str(project)).out)
    assert status["notices"][0]["channels"] == {"fax": {"failed": 27}}


async def test_a_job_carries_the_page_header_as_its_tag_line(
        hylafax: tuple[Path, int], project: Path) -> None:
    spool, port = hylafax
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace('website = "https://j-mups.com"',
                                    'website = "https://j-mups.com"\nfax = "03-5555-0100"'),
                       encoding="utf-8")
    backend = backend_from(project, Channel.FAX, fax_channels(port))
    fax = await outgoing(project, Channel.FAX, "+81355511037")
    await backend.send(fax)
    (job,) = queued_jobs(spool)
    # The same date, sender and number as the page's own header, in the configured zone;
    # the sender by its ASCII name (HylaFAX images the line in a Latin font).
    stamp = f"{fax.sent_at.astimezone(TOKYO):%Y/%m/%d %H:%M}"
    assert job["tagline"] == f"{stamp}|FROM J-Mups FAX 03-5555-0100|P.%%P/%%T"
    assert job["desiredtl"] == "1"  # the job's own tag line, not the server's


async def test_a_re_attempt_takes_over_the_job_a_crash_left_unrecorded(
        hylafax: tuple[Path, int], project: Path) -> None:
    spool, port = hylafax
    backend = backend_from(project, Channel.FAX, fax_channels(port))
    fax = await outgoing(project, Channel.FAX, "+81355511037")
    first = await backend.send(fax)
    # The first attempt's job id never reached the ledger; the re-attempt finds it by its tag.
    again = await backend.send(replace(fax, attempt=2))
    assert again.provider_ref == first.provider_ref
    other = await backend.send(replace(fax, attempt=2, tag="dispatcher-1-bbbbbbbbbbbb"))
    assert other.provider_ref != first.provider_ref
    assert len(queued_jobs(spool)) == 2
    # A job HylaFAX failed is not taken over: the fax was never delivered, so it is sent anew.
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", port)
        ftp.login("dispatcher", "")
        ftp.sendcmd(f"JKILL {first.provider_ref}")
    failure = await _wait_for_end(backend, str(first.provider_ref))
    assert isinstance(failure, PermanentError), failure  # removed by hand: not tried again
    third = await backend.send(replace(fax, attempt=3))
    assert third.provider_ref not in (first.provider_ref, other.provider_ref)
    assert len(queued_jobs(spool)) == 3


async def _wait_for_end(backend: Backend, job: str) -> ChannelError | None:
    for _ in range(600):  # a minute: faxq ends a removed job at once, when not too busy
        ended = await backend.poll([job])
        if job in ended:
            return ended[job]
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job} did not end")


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
    use_contacts(project, "F1,さくら書店 本店,佐藤,03-5551-1037,,,emoney\n")
    with fax_line() as (spool, port, modem):
        configure(project, fax_channels(port, kill_after=5) + f'modem = "{modem}"\n')
        result = cli("send", "3", "start", "--channel", "fax", "--yes", "-c", str(project))
        received = sorted((spool / "recvq").glob("fax*.tif"))
        info = subprocess.run(["faxinfo", str(received[0])], capture_output=True, text=True,
                              check=True).stdout if received else ""
        sessions = "".join(p.read_text(errors="replace") for p in (spool / "log").glob("c*"))
        widths = [tiff_width(path) for path in received]
        logs = lab_logs(spool)
    assert result.code == 0, result.out + result.err + sessions + logs
    [record] = asyncio.run(deliveries(project))
    assert record.state == "delivered"
    assert len(received) == 1
    assert "Pages: 1" in info and "Quality: Fine" in info, info
    assert widths == [1728]  # the width of an A4 (and Letter) fax page


def test_a_fax_nobody_answers_is_tried_again_per_retry_then_failed(
        cli: Cli, project: Path) -> None:
    use_contacts(project, "F1,さくら書店 本店,佐藤,03-5551-1037,,,emoney\n")
    retry = "\n[retry]\ninitial_delay_seconds = 1\nmax_attempts = 2\n"
    with fax_line(answered=False) as (spool, port, modem):
        configure(project, fax_channels(port, kill_after=5) + f'modem = "{modem}"\n'
                  'max_dials = 1\n', retry)
        result = cli("send", "3", "start", "--channel", "fax", "--yes", "-c", str(project))
        jobs = queued_jobs(spool)
        logs = lab_logs(spool)
    assert result.code == 1, result.out + result.err + logs
    [record] = asyncio.run(deliveries(project))
    assert (record.state, record.attempts) == ("failed", 2), logs
    assert record.last_error is not None
    assert record.last_error.startswith("gave up after 2 attempts: ")
    assert record.last_error.endswith("too many attempts to dial")
    # Each attempt was its own HylaFAX job (the failed first one was not taken over), and
    # HylaFAX gave each up after max_dials; the ledger keeps the last job's id.
    assert len(jobs) == 2, jobs
    assert jobs[0]["status"] == "No answer from remote; too many attempts to dial"
    assert all(job["status"].endswith("too many attempts to dial") for job in jobs)
    assert record.provider_ref == max(job["jobid"] for job in jobs)


async def test_asking_an_unreachable_server_about_jobs_is_transient(project: Path) -> None:
    backend = backend_from(project, Channel.FAX, fax_channels(free_port()))
    with pytest.raises(TransientError, match="cannot ask HylaFAX about 2 jobs"):
        await backend.poll(["1", "2"])


@pytest.mark.parametrize(("status", "code"), [
    # Statuses as HylaFAX 6 writes them (faxsend, faxq).
    ("No answer from remote; too many attempts to dial", "fax-no-answer"),
    ("Busy signal detected", "fax-busy"),
    ("No local dialtone", "fax-no-answer"),
    ("REJECT: Too many attempts to dial: 3, max 3", "fax-no-answer"),
    ("REJECT: Too many attempts to transmit: 3, max 3", "fax-no-answer"),
    # a person (or a recorded guidance) answered: faxing again would ring them again
    ("No carrier detected", "fax-voice"),
    ("Ringback detected, no answer without CED", "fax-voice"),
    ("Invalid dialing command", "fax-number"),
    ("Kill time expired", "fax"),
    ("Job aborted by request", "fax"),
    ("REJECT: Too many pages in submission: 20, max 10", "fax"),
    ("", "fax"),
])
def test_what_hylafax_failed_is_tried_again_only_for_a_busy_or_unanswered_line(
        status: str, code: str) -> None:
    failure = job_failure(status)
    again = code in ("fax-busy", "fax-no-answer")
    assert isinstance(failure, TransientError if again else PermanentError)
    assert (str(failure), failure.code) == (status or "failed", code)


@pytest.mark.parametrize(("text", "kind"), [
    ("送信結果：話中のため送信できませんでした", "busy"),
    ("送信結果：応答なし（3回発信）", "no-answer"),
    ("送信結果：電話の可能性あり", "voice"),
    ("ガイダンスが流れたため送信を中止しました", "voice"),
    ("この電話番号は現在使われておりません", "not-in-service"),
    ("送信完了", "other"),
])
def test_a_fax_gateways_japanese_result_is_read_for_what_happened(text: str, kind: str) -> None:
    assert fax_result(text).kind == kind


def test_hfaxd_busy_with_its_job_counter_is_tried_again_a_refusal_is_not() -> None:
    import ftplib

    from dispatcher.errors import PermanentError, TransientError
    busy = submit_error(ftplib.error_perm(
        "503 Unable to open sequence number file sendq/seqf; File exists."), "+81355511037")
    refused = submit_error(ftplib.error_perm("550 Invalid dialstring."), "+81355511037")
    assert type(busy) is TransientError and busy.code == "503"
    assert type(refused) is PermanentError and refused.code == "550"
    # seen on a busy CI machine: hfaxd lost the DIALSTRING the session had just set
    lost = submit_error(ftplib.error_perm(
        "504 Cannot submit job 4; null or missing DIALSTRING parameter."), "+81665712861")
    assert type(lost) is TransientError and lost.code == "504"
