"""Real local servers for tests, on 127.0.0.1, each stopped after: PostgreSQL from initdb,
aiosmtpd, a Twilio-speaking HTTP server, HylaFAX, and a fax line of two iaxmodems."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from dispatcher.demo import MailSink, free_port, mail_server


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries are missing: run bash scripts/install")
    return Path(found[-1]).parent


class PostgresCluster:
    """A throwaway PostgreSQL cluster from initdb, started and stopped with pg_ctl (as user
    postgres when run as root)."""

    def __init__(self) -> None:
        self.binaries = _postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="dispatcher-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.folder / "data", free_port()
        self.url = f"postgresql://dispatcher@127.0.0.1:{self.port}/postgres"
        subprocess.run([*self.as_user, str(self.binaries / "initdb"), "-D", str(self.data),
                        "-U", "dispatcher", "--auth=trust", "-E", "UTF8", "--no-locale"],
                       check=True, capture_output=True)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.folder} -c fsync=off "
                   "-c full_page_writes=off")
        self._pg_ctl("start", "-o", options, "-l", str(self.folder / "server.log"),
                     "-t", str(SERVER_START_SECONDS))
        _wait_for_postgres(self.binaries, self.port)

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast", "-t", str(SERVER_START_SECONDS))

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.binaries / "pg_ctl"), "-D", str(self.data),
                        "-w", *args], check=True, capture_output=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started cluster, removed afterwards."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields its URL."""
    with postgres_cluster() as cluster:
        yield cluster.url


SERVER_START_SECONDS = 120  # a bound against a hang; a busy machine may take a while


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {SERVER_START_SECONDS} s")


def _wait_for_postgres(binaries: Path, port: int) -> None:
    """Until the server accepts logins: pg_isready answers 0 only once start-up is over (a
    server still starting accepts the TCP connection, then refuses the login)."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        ready = subprocess.run([str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1",
                                "-p", str(port), "-U", "dispatcher", "-d", "postgres"],
                               check=False)
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not accept logins after {SERVER_START_SECONDS} s")


class SmtpSink(MailSink):
    """The shared mail sink, misbehaving on request, per recipient: a recipient whose local
    part starts with ``tempfail`` gets 451 on its first RCPT; ``reject`` gets 550 every
    time; ``dropdata`` loses the connection during its first DATA."""

    def __init__(self, refuse_subject: str | None = None) -> None:
        super().__init__()
        self._seen: set[str] = set()
        self._seen_lock = threading.Lock()
        self.refuse_subject = refuse_subject  # messages whose subject has it get 451
        # going down: every open connection gets 421 and is closed, so the server can stop
        self.going_down = False
    def _first_time(self, key: str) -> bool:
        with self._seen_lock:
            first = key not in self._seen
            self._seen.add(key)
            return first

    async def handle_RCPT(self, server: object, session: object, envelope: object,
                          address: str, rcpt_options: list[str]) -> str:
        local = address.split("@")[0]
        if self.going_down:
            server.transport.close()  # type: ignore[attr-defined]
            return "421 4.3.2 service shutting down"
        if local.startswith("reject"):
            return "550 5.1.1 no such user"
        if local.startswith("tempfail") and self._first_time(f"rcpt:{address}"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        envelope.rcpt_options.extend(rcpt_options)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        rcpts = list(envelope.rcpt_tos)  # type: ignore[attr-defined]
        if any(r.startswith("dropdata") for r in rcpts) and self._first_time(f"data:{rcpts}"):
            server.transport.close()  # type: ignore[attr-defined]
            return "421 4.4.2 connection dropped"
        if self.refuse_subject and self.refuse_subject in _subject(envelope.content):  # type: ignore[attr-defined]
            return "451 4.3.0 try again later"
        return self.accept(envelope)


def _subject(content: bytes) -> str:
    from email import message_from_bytes
    from email.header import decode_header, make_header
    return str(make_header(decode_header(message_from_bytes(content)["Subject"] or "")))


@contextlib.contextmanager
def smtp_server(tls: bool = False, sink: SmtpSink | None = None, port: int | None = None
                ) -> Iterator[tuple[SmtpSink, int, Path | None]]:
    """An SMTP server on 127.0.0.1 (on ``port`` if given); with ``tls``, STARTTLS is
    required and the CA file given."""
    sink = sink if sink is not None else SmtpSink()  # an empty sink is falsy (len 0)
    options: dict[str, object] = {}
    ca_file: Path | None = None
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-smtp-"))
    if tls:
        import ssl

        import trustme
        authority = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        ca_file = folder / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        options = {"tls_context": context, "require_starttls": True}
    try:
        with mail_server(sink, port, **options) as bound:
            yield sink, bound, ca_file
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _DsnSMTP(SMTP):
    """aiosmtpd's server, taking the DSN parameters (RFC 3461) that it would refuse; they
    stay in the envelope's options."""

    def _getparams(self, params: Sequence[str]) -> dict[str, str | bool] | None:
        result = super()._getparams(params)
        for key in ("RET", "ENVID", "NOTIFY", "ORCPT"):
            if result is not None:
                result.pop(key, None)
        return result


class _DsnController(Controller):
    def factory(self) -> SMTP:
        return _DsnSMTP(self.handler, **self.SMTP_kwargs)


class DsnSink(SmtpSink):
    """A sink whose server offers DSN in its EHLO, as Postfix does."""

    async def handle_EHLO(self, server: object, session: Any, envelope: object,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", responses[-1]]


@contextlib.contextmanager
def dsn_smtp_server() -> Iterator[tuple[DsnSink, int]]:
    """An SMTP server on 127.0.0.1 that offers DSN and keeps each envelope's parameters."""
    sink = DsnSink()
    controller = _DsnController(sink, hostname="127.0.0.1", port=free_port(),
                                ready_timeout=SERVER_START_SECONDS)
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


class FakeTwilio:
    """Speaks the Twilio Messages API on 127.0.0.1, keeping what it accepted.

    Numbers ``+81901234xxxx`` behave by their last digits: ``0429`` answers 429 once then 201;
    ``1211`` answers 400 with Twilio's code 21211; ``0500`` answers 500; ``0200`` gets an
    HTML page with 200, as a misconfigured proxy answers; ``0201`` gets 201 with JSON that
    is not an object. All else gets 201.

    A message's status, as a fetch answers it and as ``report`` posts it to the message's
    StatusCallback (signed as Twilio signs), is ``delivered`` unless ``fates`` names its
    number: ``fates["+819055550001"] = ("undelivered", "30005")``.
    """

    def __init__(self, auth_token: str = "secret") -> None:
        import threading
        self.calls = FakeCalls(auth_token)
        self.accepted: list[dict[str, str]] = []
        self.requests = 0
        self.fetches = 0
        self.throttled = False  # while True, every request gets 429 (an account-wide limit)
        self.fates: dict[str, tuple[str, str | None]] = {}
        self.auth_token = auth_token
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def message(self, sid: str) -> dict[str, str]:
        """The form of the accepted message ``sid`` (``SM…``)."""
        return self.accepted[int(sid[2:]) - 1]

    def status(self, sid: str) -> tuple[str, str | None]:
        return self.fates.get(self.message(sid)["To"], ("delivered", None))

    def fetch(self, sid: str) -> tuple[int, dict[str, object]]:
        with self._lock:
            self.requests += 1
            self.fetches += 1
            if self.throttled:
                return 429, {"code": 20429, "message": "Too Many Requests", "status": 429}
            known = sid.startswith("SM") and sid[2:].isdigit() and \
                0 < int(sid[2:]) <= len(self.accepted)
        if not known:
            return 404, {"code": 20404, "message": f"{sid} not found", "status": 404}
        status, code = self.status(sid)
        form = self.message(sid)
        return 200, {"sid": sid, "status": status, "error_code": int(code) if code else None,
                     "error_message": None, "to": form["To"], "from": form.get("From"),
                     "body": form.get("Body"), "account_sid": "ACtest"}

    def report(self, sid: str, status: str | None = None, code: str | None = None,
               signature: str | None = None) -> int:
        """POST a status callback for ``sid`` to its StatusCallback as Twilio would, signed
        with the account's auth token (or with ``signature``); the HTTP status answered."""
        import urllib.error
        import urllib.request
        from urllib.parse import urlencode

        from twilio.request_validator import RequestValidator

        fate = self.status(sid)
        form = self.message(sid)
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "ACtest",
                  "MessageStatus": status or fate[0], "SmsStatus": status or fate[0],
                  "To": form["To"], "From": form.get("From", ""), "ApiVersion": "2010-04-01"}
        if code or (status is None and fate[1]):
            params["ErrorCode"] = code or fate[1] or ""
        url = form["StatusCallback"]
        if signature is None:
            signature = RequestValidator(self.auth_token).compute_signature(url, params)
        request = urllib.request.Request(url, urlencode(params).encode(), method="POST",
                                         headers={"X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, object] | str]:
        to = form.get("To", "")
        magic = to[-4:] if to.startswith("+81901234") else ""
        with self._lock:
            self.requests += 1
            first = to not in self._seen
            self._seen.add(to)
            if self.throttled:
                return 429, {"code": 20429, "message": "Too Many Requests", "status": 429}
            if magic == "0429" and first:
                return 429, {"code": 20429, "message": "Too Many Requests", "status": 429}
            if magic == "1211":
                return 400, {"code": 21211, "status": 400,
                             "message": f"The 'To' number {to} is not a valid phone number."}
            if magic == "0500":
                return 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
            if magic == "0200":
                return 200, "<html><body>Welcome to the proxy</body></html>"
            if magic == "0201":
                return 201, "[]"
            self.accepted.append(form)
            sid = f"SM{len(self.accepted):032d}"
        return 201, {"sid": sid, "status": "queued", "to": to, "from": form.get("From"),
                     "body": form.get("Body"), "num_segments": "2",
                     "account_sid": "ACtest", "date_created": None, "error_code": None}


class FakeCalls:
    """Twilio's Calls API: each call accepted gets a CallSid, then is played in a thread as
    a real call would be, every request signed with the account's auth token: answered (a
    POST to its Url with ``AnsweredBy``), a key pressed at its ``<Gather>``, and its end
    posted to its StatusCallback. ``fates[number]`` says how: ``human`` (the default: the
    words heard, no key), ``human-1`` (1 pressed), ``machine``, ``busy``, ``no-answer``,
    ``failed``."""

    def __init__(self, auth_token: str) -> None:
        import threading
        self.auth_token = auth_token
        self.accepted: list[dict[str, str]] = []
        self.fates: dict[str, str] = {}
        self.heard: dict[str, str] = {}  # CallSid → the TwiML its answer fetched
        self.ended: list[tuple[str, str, int]] = []  # (To, CallStatus, HTTP status answered)
        self._lock = threading.Lock()

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        import threading
        with self._lock:
            self.accepted.append(form)
            sid = f"CA{len(self.accepted):032d}"
        threading.Thread(target=self._play, args=(sid, form), daemon=True).start()
        return 201, {"sid": sid, "status": "queued", "to": form.get("To"),
                     "from": form.get("From"), "account_sid": "ACtest", "direction":
                     "outbound-api", "api_version": "2010-04-01"}

    def _play(self, sid: str, form: dict[str, str]) -> None:
        import xml.etree.ElementTree as ET
        fate = self.fates.get(form.get("To", ""), "human")
        base = {"CallSid": sid, "AccountSid": "ACtest", "To": form.get("To", ""),
                "From": form.get("From", ""), "Direction": "outbound-api",
                "ApiVersion": "2010-04-01"}
        answered_by = {"machine": "machine_end_beep"}.get(fate, "human")
        if fate in ("human", "human-1", "machine"):
            twiml = form.get("Twiml") or self._post(form.get("Url"), {
                **base, "CallStatus": "in-progress", "AnsweredBy": answered_by})[1]
            self.heard[sid] = twiml
            gather = ET.fromstring(twiml).find(".//Gather") if twiml else None
            if fate == "human-1" and gather is not None and gather.get("action"):
                self._post(gather.get("action"), {**base, "CallStatus": "in-progress",
                                                  "Digits": "1"})
            status, extra = "completed", {"CallDuration": "42", "AnsweredBy": answered_by}
        else:
            status, extra = fate, {"CallDuration": "0"}
        code, _ = self._post(form.get("StatusCallback"), {**base, "CallStatus": status,
                                                          **extra})
        with self._lock:
            self.ended.append((form.get("To", ""), status, code))

    def _post(self, url: str | None, params: dict[str, str]) -> tuple[int, str]:
        import urllib.error
        import urllib.request
        from urllib.parse import urlencode

        from twilio.request_validator import RequestValidator
        if not url:
            return 0, ""
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        request = urllib.request.Request(url, urlencode(params).encode(), method="POST",
                                         headers={"X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""


@contextlib.contextmanager
def twilio_server() -> Iterator[tuple[FakeTwilio, str]]:
    """A local HTTP server speaking Twilio's Messages and Calls APIs; yields it and its base
    URL."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl

    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
            status, body = fake.fetch(sid) if "/Messages/" in self.path else (
                404, {"code": 20404, "message": "not found", "status": 404})
            self._answer(status, body)

        def _answer(self, status: int, body: dict[str, object] | str) -> None:
            text = body if isinstance(body, str) else json.dumps(body)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type",
                             "text/html" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            body: dict[str, object] | str
            if self.path.endswith("/Calls.json"):
                status, body = fake.calls.answer(form)
            elif not self.path.endswith("/Messages.json"):
                status, body = 404, {"code": 20404, "message": "not found", "status": 404}
            else:
                status, body = fake.answer(form)
            self._answer(status, body)

        def log_message(self, *args: object) -> None:
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            """A client killed mid-request (the crash test) is expected here."""

    server = QuietServer(("127.0.0.1", 0), Handler)  # the kernel picks a free port
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


PRISM = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "prism"
TWILIO_OAI = (Path(__file__).resolve().parents[2] / "shared" / "data" / "twilio-oai"
              / "twilio_api_v2010.yaml")


@contextlib.contextmanager
def prism_server(log: Path) -> Iterator[str]:
    """Stoplight Prism serving Twilio's own OpenAPI description as a mock on 127.0.0.1: a
    request that does not match it is answered 422 and logged as a violation. Yields its
    base URL once it says it listens; its log is ``log``."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(PRISM), "mock", "--host", "127.0.0.1", "--port", str(port), str(TWILIO_OAI)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # a bound against a hang, not a timing
        while "Prism is listening" not in log.read_text(encoding="utf-8", errors="replace"):
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "Prism did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


async def fresh_schema(url: object) -> None:
    """Drop the ledger's tables in a shared test database, so each test starts empty."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from dispatcher.ledger import metadata
    engine = create_async_engine(url)  # type: ignore[arg-type]
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await engine.dispose()


def _spool_folder() -> Path:
    """A new temporary folder whose path holds no "_". HylaFAX names a modem after its
    device path with "/" turned into "_", and turns it back to find the device: a "_" of
    the folder's own (mkdtemp puts one in about one name in five) makes a modem that no
    job ever reaches, and the fax waits until its kill time."""
    base = Path(tempfile.gettempdir())
    assert "_" not in str(base), f"HylaFAX cannot use a spool under {base}"
    while True:
        spool = base / f"dispatcher-hylafax-{secrets.token_hex(4)}"
        with contextlib.suppress(FileExistsError):
            spool.mkdir(mode=0o755)
            spool.chmod(0o755)
            return spool


def hylafax_spool() -> Path:
    """A copy of the Debian package's spool, with the configuration that systemd would bind
    from /etc/hylafax copied into its etc/; the machine's own files are not touched."""
    spool = _spool_folder()
    subprocess.run(["cp", "-a", "/var/spool/hylafax/.", str(spool)], check=True)
    subprocess.run(["cp", "-a", "/etc/hylafax/.", str(spool / "etc")], check=True)
    (spool / "etc" / "config").write_text(
        "CountryCode: 81\nAreaCode: 3\nLongDistancePrefix: 0\nInternationalPrefix: 010\n"
        f"DialStringRules: etc/dialrules\nUUCPLockDir: {spool}/lock\n")
    hosts = spool / "etc" / "hosts.hfaxd"
    hosts.write_text("127.0.0.1\nlocalhost\n")
    hosts.chmod(0o600)
    os.mkfifo(spool / "FIFO", 0o600)
    (spool / "lock").mkdir()
    if os.geteuid() == 0:
        for path in (hosts, spool / "FIFO", spool / "lock"):
            shutil.chown(path, "uucp", "uucp")
    return spool


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def queued_jobs(spool: Path) -> list[dict[str, str]]:
    """The job description files of a HylaFAX spool (sendq, then doneq), as tag: value."""
    jobs = []
    for folder in ("sendq", "doneq"):
        for q in sorted((spool / folder).glob("q[0-9]*")):
            fields = dict(line.split(":", 1) for line in q.read_text().splitlines()
                          if ":" in line)
            jobs.append(fields)
    return jobs


@contextlib.contextmanager
def hylafax_server() -> Iterator[tuple[Path, int]]:
    """HylaFAX's faxq and hfaxd on a spool in a temporary folder, no modem; yields both."""
    spool = hylafax_spool()
    port = free_port()
    queue = subprocess.Popen(["faxq", "-q", str(spool), "-D"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    server = subprocess.Popen(["hfaxd", "-q", str(spool), "-i", str(port), "-d"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, server)
        yield spool, port
    finally:
        for process in (server, queue):
            _stop(process)
        shutil.rmtree(spool, ignore_errors=True)


LAB_SCRIPT = Path(__file__).parent / "lab" / "fax-lab.sh"
LAB_IAX_PORTS = (4569, 4570)  # fixed by fax-lab.sh: iaxmodem dials the IAX2 port 4569


@contextlib.contextmanager
def fax_line(answered: bool = True) -> Iterator[tuple[Path, int, str]]:
    """A real fax line: two iaxmodems dialling each other, HylaFAX sending on one and
    receiving on the other, in a private mount namespace. Yields the spool, hfaxd's port
    and the sending modem's HylaFAX name once faxq itself has said that modem is ready.
    Not ``answered``: the far end's modem rings but nothing answers it.
    Every process it starts is stopped after."""
    _require_free_udp(LAB_IAX_PORTS)
    spool = hylafax_spool()
    port = free_port()
    log = spool / "lab.log"
    with log.open("wb") as output:
        lab = subprocess.Popen(["unshare", "-m", "--propagation", "private", "bash",
                                str(LAB_SCRIPT), str(spool), str(port),
                                "answer" if answered else "no-answer"],
                               stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    sender, receiver = (str(spool / "lab" / "dev" / name).replace("/", "_")
                        for name in ("ttyIAX0", "ttyIAX1"))
    try:
        _wait_for_line(spool, lab, sender, [sender, receiver] if answered else [sender])
        yield spool, port, sender
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
        subprocess.run(["pkill", "-f", str(spool)], check=False)
        shutil.rmtree(spool, ignore_errors=True)


LAB_DEADLINE_SECONDS = 120  # a modem comes up in 2-5 s; a busy machine may take ten times that
HELLO_AFTER_SECONDS = 5  # faxgetty's own announcement comes first


def _wait_for_line(spool: Path, lab: subprocess.Popen[bytes], sender: str,
                   modems: list[str]) -> None:
    """Waits until each modem's faxgetty is idle and faxq has logged the sender as ready:
    only then does a job submitted to hfaxd leave at once instead of sleeping until its kill
    time. While faxq has not said so, the sender's faxgetty is asked to announce itself
    again, as faxq does when it starts ("HELLO" on the modem's FIFO). Fails with what the
    lab logged if the lab stops or the deadline passes."""
    deadline = time.monotonic() + LAB_DEADLINE_SECONDS
    hello_at: float | None = None
    while not (_faxq_says_ready(spool, sender) and all(_modem_idle(spool, m) for m in modems)):
        if lab.poll() is not None:
            raise RuntimeError(f"the fax lab stopped (exit {lab.returncode})\n"
                               + lab_logs(spool))
        if time.monotonic() > deadline:
            raise RuntimeError(f"faxq did not report the modem {sender} ready within "
                               f"{LAB_DEADLINE_SECONDS} s\n" + lab_logs(spool))
        if hello_at is None and _modem_idle(spool, sender):
            hello_at = time.monotonic() + HELLO_AFTER_SECONDS
        if hello_at is not None and time.monotonic() >= hello_at:
            _say_hello(spool, sender)
            hello_at = time.monotonic() + HELLO_AFTER_SECONDS
        time.sleep(0.2)


def _faxq_says_ready(spool: Path, modem: str) -> bool:
    syslog = spool / "lab" / "syslog"
    if not syslog.exists():
        return False
    return any("FaxQueuer" in line and f"MODEM {modem}: READY" in line
               for line in syslog.read_text(errors="replace").splitlines())


def _say_hello(spool: Path, modem: str) -> None:
    """Writes HELLO to the modem's faxgetty FIFO: a running faxgetty answers faxq with its
    state and capabilities. Nothing happens if no faxgetty reads the FIFO yet."""
    with contextlib.suppress(OSError):
        fifo = os.open(spool / f"FIFO.{modem}", os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fifo, b"HELLO\0")
        finally:
            os.close(fifo)


def lab_logs(spool: Path) -> str:
    """What the fax lab's programs logged: HylaFAX's syslog lines, iaxmodem's logs and the
    lab script's own output."""
    parts = [("syslog (faxq, faxgetty, hfaxd)", spool / "lab" / "syslog"),
             *((f"iaxmodem {p.name}", p) for p in sorted((spool / "lab" / "log").glob("*"))
               if p.is_file()),
             ("fax-lab.sh", spool / "lab.log")]
    return "\n".join(f"--- {title} ---\n{path.read_text(errors='replace')[-8000:]}"
                     for title, path in parts if path.exists())


def _require_free_udp(ports: tuple[int, ...]) -> None:
    """Fail at once, rather than after the fax's kill time, when another fax lab (a second
    test run on this machine) holds the IAX2 ports that iaxmodem must use."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"UDP port {port} is taken ({exc}): is another fax "
                                   "end-to-end test running on this machine?") from exc


def _modem_idle(spool: Path, modem: str) -> bool:
    status = spool / "status" / modem
    return status.exists() and "Running and idle" in status.read_text(errors="replace")


_DOVECOT_CONF = """
base_dir = {folder}/run
instance_name = dispatcher-test-{port}
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
first_valid_uid = 1
default_internal_user = {internal_user}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={internal_user} gid={internal_group} home={folder}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@contextlib.contextmanager
def dovecot_server(user: str = "bounces", password: str = "secret",
                   capabilities: str | None = None) -> Iterator[tuple[int, Path]]:
    """Dovecot's IMAP server on 127.0.0.1, unprivileged, on a temporary folder and port,
    with one mailbox user; yields its port and its log. As root, the mail and login
    processes run as Debian's dovecot and dovenull users (Dovecot refuses root).
    ``capabilities``: what it announces after login (to play an older server)."""
    import grp
    import pwd

    folder = Path(tempfile.mkdtemp(prefix="dispatcher-dovecot-"))
    root = os.geteuid() == 0
    internal = "dovecot" if root else pwd.getpwuid(os.geteuid()).pw_name
    group = "dovecot" if root else grp.getgrgid(os.getegid()).gr_name
    for sub in ("run", "mail", "home"):
        (folder / sub).mkdir()
    if root:
        folder.chmod(0o755)
        for sub in ("mail", "home"):
            shutil.chown(folder / sub, internal, group)
    (folder / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    config = folder / "dovecot.conf"
    port = 0
    try:
        for _ in range(5):  # another server may take the free port first: try another
            port = free_port()
            config.write_text(_DOVECOT_CONF.format(
                folder=folder, port=port, internal_user=internal, internal_group=group,
                login_user="dovenull" if root else internal) + (
                f"imap_capability = {capabilities}\n" if capabilities else ""))
            # its output to a file: dovecot forks, and its children would hold a pipe open
            with (folder / "start.log").open("ab") as output:
                started = subprocess.run([binary, "-c", str(config)], stdin=subprocess.DEVNULL,
                                         stdout=output, stderr=output)
            if started.returncode == 0:
                break
        else:
            raise RuntimeError(f"dovecot did not start: {(folder / 'start.log').read_text()}")
        _wait_until_listening(port)
        yield port, folder / "dovecot.log"
    finally:
        subprocess.run([binary, "-c", str(config), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_exit(folder / "run" / "master.pid")
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_for_exit(pid_file: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


_RADICALE_CONF = """\
[server]
hosts = 127.0.0.1:{port}
[auth]
type = none
[rights]
type = owner_only
[storage]
filesystem_folder = {folder}/collections
[logging]
level = warning
"""


@contextlib.contextmanager
def radicale_server() -> Iterator[str]:
    """Radicale, a CalDAV server, on 127.0.0.1 on a temporary folder and port, accepting
    any user name; yields its base URL."""
    import sys

    folder = Path(tempfile.mkdtemp(prefix="dispatcher-radicale-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(5):  # another server may take the free port first: try another
            port = free_port()
            (folder / "config").write_text(_RADICALE_CONF.format(port=port, folder=folder))
            with (folder / "radicale.log").open("ab") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "radicale", "--config", str(folder / "config")],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=output)
            try:
                _wait_for_port(port, process)
                break
            except RuntimeError:
                if process.poll() is None:
                    raise
        else:
            raise RuntimeError(f"Radicale did not start: {(folder / 'radicale.log').read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
