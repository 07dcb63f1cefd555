"""Sending speed and memory: `dispatcher send` by e-mail to a local SMTP sink.

The sink is Postfix's smtp-sink, unpacked from Debian's package without installing it
(aiosmtpd's Sink when the package cannot be fetched), in its own process. In the same run,
a bare aiosmtplib loop over 8 reused connections, one EmailMessage per message, sends the
same rendered messages to the same sink: the baseline. The same loop on uvloop (the event
loop dispatcher runs on) and with dispatcher's byte builder are printed beside it, with
the peak memory (RSS) of the `dispatcher send` process. Targets: 2x the baseline; peak
RSS under 250 MB at 100,000 contacts (`--contacts 100000 --no-baseline`).

    .venv/bin/python bench/send.py [--contacts N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib
import uvloop

from dispatcher.demo import free_port
from dispatcher.render import Message

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 8


def postfix_sink() -> list[str] | None:
    """Postfix's smtp-sink (C, one process), unpacked from Debian's package without
    installing it, into a cache folder; None when the package cannot be fetched."""
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dispatcher-bench"
    binary = folder / "root" / "usr" / "sbin" / "smtp-sink"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(["apt-get", "download", "postfix"], cwd=folder,
                                 capture_output=True, check=False)
        packages = sorted(folder.glob("postfix_*.deb"))
        if fetched.returncode != 0 or not packages:
            return None
        subprocess.run(["dpkg", "-x", str(packages[-1]), str(folder / "root")], check=True)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    return [str(binary), *user, "-c"]


def start_sink(port: int) -> tuple[subprocess.Popen[bytes], str]:
    """A sink in its own process, so it does not share our CPU time: Postfix's smtp-sink
    when it can be had, else aiosmtpd's Sink handler. Returns the process and its name."""
    postfix = postfix_sink()
    if postfix:
        library = Path(postfix[0]).parents[2] / "usr" / "lib" / "postfix"
        command = [*postfix, f"127.0.0.1:{port}", "1000"]
        env = {**os.environ, "LD_LIBRARY_PATH": str(library)}
        name = "Postfix smtp-sink"
    else:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                   "-c", "aiosmtpd.handlers.Sink"]
        env, name = dict(os.environ), "aiosmtpd Sink"
    sink = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # against a hang; a busy machine starts slowly
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return sink, name
        except OSError:
            if sink.poll() is not None:
                raise RuntimeError(f"{name} exited with {sink.returncode}") from None
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start")


def email_only(n: int) -> str:
    return f"B{n:06d},ベンチ加盟店{n:06d},担当 {n},,b{n:06d}@example.jp,,emoney\n"


def make_project(folder: Path, contacts: int, port: int,
                 contact_row: Callable[[int], str] = email_only, more_channels: str = ""
                 ) -> Path:
    """The shipped table, ``contacts`` rows of ``contact_row``, e-mail to the sink on
    ``port``, and ``more_channels`` (TOML tables) after it."""
    for name in ("templates",):
        shutil.copytree(ROOT / name, folder / name)
    (folder / "contacts").mkdir()
    with (folder / "contacts" / "bench.csv").open("w", encoding="utf-8") as out:
        out.write("id,merchant,name,fax,email,sms,tags\n")
        for n in range(contacts):
            out.write(contact_row(n))
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text[: text.index("# Each channel's backend")]
    text += f"""
[channels.email]
backend = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
from = "J-Mups センター <maintenance@j-mups.example.jp>"
concurrency = {CONNECTIONS}
""" + more_channels
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def run_send(config: Path, channels: tuple[str, ...] = ("email",)) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of `dispatcher send 3 start --channel C... --yes`."""
    chosen = [argument for channel in channels for argument in ("--channel", channel)]
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "send", "3", "start", *chosen,
         "--yes", "-c", str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"dispatcher send exited with {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss


def email_message(message: Message, sender: str, sent_at: datetime) -> EmailMessage:
    """The e-mail built the usual way, with the standard library's EmailMessage."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = Address(message.contact.merchant, addr_spec=message.address)
    mail["Subject"] = message.subject or ""
    mail["Date"] = format_datetime(sent_at)
    mail["Message-ID"] = f"<{message.contact.id}@bench>"
    mail.set_content(message.body, charset="utf-8", cte="base64")
    return mail


async def bare_loop(config_path: Path, port: int, fast_bytes: bool) -> tuple[int, float]:
    """The same messages, rendered first, sent over 8 reused aiosmtplib connections.

    Built as EmailMessage objects (the usual way) or, with ``fast_bytes``, by
    dispatcher's own byte builder.
    """
    from dispatcher.render import Renderer, build_email
    from dispatcher.table import Channel, Phase, build_notice, find_window, load_inputs

    inputs = load_inputs(config_path)
    config = inputs.config
    window = find_window(config.windows, "3")
    notice = build_notice(window, window.planned, Phase.START)
    renderer = Renderer(config.settings.templates_dir, config)
    now = datetime.now(UTC)
    messages = [renderer.render(notice, c, Channel.EMAIL, now) for c in inputs.contacts]
    sender = config.messages.mail_from
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(messages)):
        queue.put_nowait(index)

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        while not queue.empty():
            message = messages[queue.get_nowait()]
            if fast_bytes:
                raw = build_email(message, sender, now, f"<{message.contact.id}@b>")
                await smtp.sendmail("m@j-mups.example.jp", [message.address], raw)
            else:
                await smtp.send_message(email_message(message, sender, now))
        await smtp.quit()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return len(messages), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--no-baseline", action="store_true",
                        help="Only run dispatcher send (for the memory figure at 100,000).")
    args = parser.parse_args()
    port = free_port()
    sink, sink_name = start_sink(port)
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    try:
        config = make_project(folder, args.contacts, port)
        if not args.no_baseline:
            count, bare_seconds = asyncio.run(bare_loop(config, port, fast_bytes=False))
            _, uvloop_seconds = uvloop.run(bare_loop(config, port, fast_bytes=False))
            _, bytes_seconds = asyncio.run(bare_loop(config, port, fast_bytes=True))
        send_seconds, peak_kib = run_send(config)
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(folder, ignore_errors=True)
    send_rate = args.contacts / send_seconds
    print(f"e-mail to {sink_name} on 127.0.0.1, {args.contacts:,} contacts, "
          f"{CONNECTIONS} connections")
    print(f"  dispatcher send (whole command, with ledger) : {send_rate:8,.0f} messages/s "
          f"({send_seconds:.1f} s)")
    print(f"  peak RSS of dispatcher send: {peak_kib / 1024:.0f} MB")
    if args.no_baseline:
        return
    bare_rate, bytes_rate = count / bare_seconds, count / bytes_seconds
    uvloop_rate = count / uvloop_seconds
    print(f"  bare aiosmtplib loop, EmailMessage (baseline): {bare_rate:8,.0f} messages/s "
          f"({bare_seconds:.1f} s)")
    print(f"  the same loop on uvloop (as dispatcher runs) : {uvloop_rate:8,.0f} messages/s "
          f"({uvloop_seconds:.1f} s)")
    print(f"  bare aiosmtplib loop, dispatcher's bytes     : {bytes_rate:8,.0f} messages/s "
          f"({bytes_seconds:.1f} s)")
    print(f"  ratio (send / baseline): {send_rate / bare_rate:.2f}; "
          f"against the loop on uvloop: {send_rate / uvloop_rate:.2f}")


if __name__ == "__main__":
    main()
