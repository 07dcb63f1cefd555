"""The ``hylafax`` fax backend: HylaFAX's client protocol (FTP-like, port 4559).

A fax is not done when it is submitted: ``send`` uploads the page, creates and submits a
job, and returns ``submitted`` with the job id; ``poll`` asks the server until the job is
DONE (``delivered``) or FAILED (``failed``, with HylaFAX's reason). A job HylaFAX is still
re-dialling stays ``submitted`` and is never submitted twice. ``ftplib`` carries the
protocol, off the event loop.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import tzinfo
from typing import ClassVar

from dispatcher.errors import ChannelError, PermanentError, TransientError, UnavailableError
from dispatcher.render import tag_line
from dispatcher.send.channels.base import Backend, Outgoing, Receipt, secret
from dispatcher.send.channels.fax_results import fax_result
from dispatcher.table import HylafaxSettings, Sender

_FILE = re.compile(r"FILE: (\S+?)\)?\.?$")
_JOB = re.compile(r"[Jj]ob (\d+)")
_TIMEOUT_SECONDS = 30.0  # for each answer of the server
_SEP = "|"  # between the fields of a queue listing (JOBFMT)


def hylafax_password(config: HylafaxSettings, env: Mapping[str, str]) -> str:
    """The password from the environment ("" without ``password_env``); SetupError naming
    the key if the variable is not set."""
    if not config.password_env:
        return ""
    return secret(env, config.password_env, "[channels.fax] password_env")


class HylaFax(Backend):
    name: ClassVar[str] = "hylafax"
    confirms_later: ClassVar[bool] = True

    def __init__(self, config: HylafaxSettings, env: Mapping[str, str], sender: Sender,
                 tz: tzinfo) -> None:
        self._config = config
        self._sender = sender
        self._timezone = tz
        self.poll_seconds = config.poll_seconds
        self._password = hylafax_password(config, env)

    async def send(self, outgoing: Outgoing) -> Receipt:
        assert outgoing.document is not None, "a fax is sent with its rendered document"
        try:
            job = await asyncio.to_thread(self._submit, outgoing)
        except (ftplib.Error, OSError, EOFError) as exc:
            raise submit_error(exc, outgoing.message.address) from exc
        return Receipt(job)

    async def poll(self, jobs: Sequence[str]) -> dict[str, ChannelError | None]:
        """The jobs that have ended: job id → None (DONE) or why HylaFAX failed it."""
        try:
            return await asyncio.to_thread(self._states, jobs)
        except (ftplib.Error, OSError, EOFError) as exc:
            raise TransientError(f"cannot ask HylaFAX about {len(jobs)} jobs: {exc}") from exc

    def _submit(self, outgoing: Outgoing) -> str:
        assert outgoing.document is not None
        c = self._config
        with self._session() as ftp:
            # A re-attempt may follow a crash between JSUBM and recording the job id: a job
            # with this delivery's tag that has not failed is that fax, so it is not sent again.
            if outgoing.attempt > 1 and (existing := _tagged_job(ftp, outgoing.tag)):
                return existing
            ftp.sendcmd("TYPE I")
            ftp.sendcmd("FORM PDF")
            stored = ftp.storbinary("STOT", io.BytesIO(outgoing.document.pdf))
            match = _FILE.search(stored.strip())
            if match is None:
                raise ftplib.error_proto(f"no file name in {stored!r}")
            ftp.sendcmd("JNEW")
            minutes = c.kill_after_minutes
            for name, value in (
                ("FROMUSER", _quoted(c.user)),
                ("DIALSTRING", _quoted(outgoing.message.address)),
                ("JOBINFO", _quoted(outgoing.tag)),
                ("MAXDIALS", str(c.max_dials)),
                ("MAXTRIES", str(c.max_dials)),
                ("LASTTIME", f"{minutes // 1440:02d}{minutes % 1440 // 60:02d}{minutes % 60:02d}"),
                ("NOTIFY", '"none"'),
                ("MODEM", _quoted(c.modem)),
                ("PAGEWIDTH", "209"),   # ISO A4, in millimetres
                ("PAGELENGTH", "296"),
                ("VRES", "196"),        # fine mode: small kanji stay legible
                ("USETAGLINE", "YES"),  # the page's header line, as a fax machine prints it
                ("TAGLINE", _quoted(tag_line(self._sender, outgoing.sent_at,
                                                       self._timezone))),
                ("DOCUMENT", _quoted(match.group(1))),
            ):
                ftp.sendcmd(f"JPARM {name} {value}")
            submitted = ftp.sendcmd("JSUBM")
        job = _JOB.search(submitted)
        if job is None:
            raise ftplib.error_proto(f"no job id in {submitted!r}")
        return job.group(1)

    def _states(self, jobs: Sequence[str]) -> dict[str, ChannelError | None]:
        ended: dict[str, ChannelError | None] = {}
        with self._session() as ftp:
            for job in jobs:
                ftp.sendcmd(f"JOB {job}")
                state = ftp.sendcmd("JPARM STATE")[4:].strip().upper()
                if state == "DONE":
                    ended[job] = None
                elif state == "FAILED":
                    ended[job] = job_failure(ftp.sendcmd("JPARM STATUS")[4:].strip())
        return ended

    @contextmanager
    def _session(self) -> Iterator[ftplib.FTP]:
        c = self._config
        ftp = ftplib.FTP(timeout=_TIMEOUT_SECONDS)
        ftp.connect(c.host, c.port)  # no connection, nothing to close
        try:
            ftp.login(c.user, self._password)
            yield ftp
        finally:
            try:
                ftp.quit()
            except (ftplib.Error, OSError, EOFError):
                ftp.close()


def job_failure(status: str) -> ChannelError:
    """Why HylaFAX failed a job, as ``fax_results`` reads it. Busy or no answer (HylaFAX
    gave up after ``max_dials``) may clear, so another attempt follows ``[retry]``; a voice
    that answered, a number not in service, a kill time that expired, a job removed by
    hand do not. The error's code says which (``fax-busy``, ``fax-voice``, ``fax-number``…)."""
    reason = status or "failed"
    result = fax_result(reason)
    if result.retried:
        return TransientError(reason, result.code)
    return PermanentError(reason, result.code)


def _tagged_job(ftp: ftplib.FTP, tag: str) -> str | None:
    """The id of a queued, running or done (not failed) job whose tag is ``tag``."""
    ftp.sendcmd(f'JOBFMT "%j{_SEP}%a{_SEP}%J"')
    for queue in ("sendq", "doneq"):
        lines: list[str] = []
        ftp.retrlines(f"LIST {queue}", lines.append)
        for line in lines:
            job, _, rest = line.strip().partition(_SEP)
            state, _, job_tag = rest.partition(_SEP)
            if job_tag.strip() == tag and state.strip() != "F":
                return job.strip()
    return None


def _quoted(value: str) -> str:
    return '"' + value.replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


# A 5xx that is about the server's own files, not the job: hfaxd answers "503 Unable to
# open sequence number file sendq/seqf; File exists" when jobs are submitted at the same
# moment and its lock on the job counter is taken. Another attempt succeeds.
# hfaxd's own trouble, not the job's: its sequence file, a lock, and (seen under load on a
# busy machine) a JSUBM that finds no DIALSTRING though the session set it just before.
# No job was queued: the submission is tried again (a re-attempt finds a job by its tag).
_SERVER_TROUBLE = re.compile(r"sequence number file|unable to (open|lock)|temporarily "
                             r"unavailable|missing DIALSTRING", re.IGNORECASE)


def submit_error(exc: BaseException, recipient: str) -> ChannelError:
    """What a failed job submission means: busy or unreachable (transient) or refused."""
    code = str(exc)[:3] if isinstance(exc, ftplib.Error) else None
    if isinstance(exc, ftplib.error_perm) and _SERVER_TROUBLE.search(str(exc)):
        return TransientError(f"HylaFAX busy: {exc}", code, recipient)
    if isinstance(exc, ftplib.error_perm):
        return PermanentError(f"HylaFAX refused the job: {exc}", code, recipient)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror) or code == "421":
        return UnavailableError(f"HylaFAX unreachable: {type(exc).__name__}: {exc}", code,
                                recipient)
    return TransientError(f"HylaFAX: {type(exc).__name__}: {exc}", code, recipient)
