r"""The bounce mailbox: returned mail read over IMAP (aioimaplib), matched and recorded
like `receipts read-mail --apply`, then moved to a folder of its own. Nothing is ever
deleted; a mail that matches no delivery stays where it is, looked at once per run.

Moving is MOVE where the server has it; else COPY, flag ``\Deleted`` and ``UID EXPUNGE``
of that one message (UIDPLUS); else the copied message is only flagged, and left: a
plain EXPUNGE would delete every flagged mail in the folder, other programs' too. Flagged
mail is not read again."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import aioimaplib

from dispatcher.clock import Clock
from dispatcher.errors import SetupError, single
from dispatcher.ledger import Ledger
from dispatcher.logs import event
from dispatcher.receipts.mail import MailMatcher, read_mails
from dispatcher.table import EmailReceipts

log = logging.getLogger("dispatcher.receipts")

_IMAP_TIMEOUT_SECONDS = 60.0


class ImapError(Exception):
    """The mailbox did not answer as IMAP should (a refused login, a missing folder)."""


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    secure: bool
    folder: str
    user: str
    password: str

    @classmethod
    def of(cls, settings: EmailReceipts, env: Mapping[str, str]) -> ImapAccount | None:
        """From [receipts.email] imap_url and the environment; None without imap_url."""
        if settings.imap_url is None:
            return None
        credentials = []
        for key, name in (("imap_user_env", settings.imap_user_env),
                          ("imap_password_env", settings.imap_password_env)):
            if not env.get(name):
                raise single(SetupError, f"[receipts.email] {key}",
                             f"environment variable {name} is not set")
            credentials.append(env[name])
        url = urlsplit(settings.imap_url)
        secure = url.scheme == "imaps"
        folder = unquote(url.path.lstrip("/")) or "INBOX"
        return cls(url.hostname or "localhost", url.port or (993 if secure else 143), secure,
                   folder, *credentials)


@dataclass
class ImapIntake:
    """One bounce mailbox read into one ledger."""

    account: ImapAccount
    matcher: MailMatcher
    processed_folder: str
    clock: Clock
    _left_alone: set[bytes] = field(default_factory=set, init=False)

    @property
    def ledger(self) -> Ledger:
        return self.matcher.ledger

    async def poll_once(self) -> Counter[str]:
        """Read every mail not yet looked at; returns counts (read, recorded, left)."""
        tally: Counter[str] = Counter()
        self.matcher.forget()
        client = await self._connect()
        try:
            await _ok(client.create(self.processed_folder), "CREATE", allow_no=True)
            await _ok(client.select(self.account.folder), f"SELECT {self.account.folder}")
            found = await _ok(client.uid_search("UNDELETED"), "SEARCH")
            uids = [u for line in found.lines[:-1] for u in line.split() if u.isdigit()]
            for uid in uids:
                if uid not in self._left_alone:
                    tally[await self._take(client, uid)] += 1
        finally:
            await _logout(client)
        return tally

    async def _take(self, client: aioimaplib.IMAP4, uid: bytes) -> str:
        fetched = await _ok(client.uid("fetch", uid.decode(), "(BODY.PEEK[])"), "FETCH")
        raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), b"")
        name = f"imap:{self.account.folder}/{uid.decode()}"
        try:
            [result] = await read_mails([(name, raw)], self.matcher, "imap")
        except Exception as exc:  # a mail no parser can read: logged and left alone
            event(log, logging.WARNING, "unreadable mail left in the bounce mailbox", mail=name,
                  error=f"{type(exc).__name__}: {exc}")
            self._left_alone.add(uid)
            return "left"
        if result.forged_report is not None:  # kept for the record, and out of the way
            await self.ledger.record_forged([result.forged_report], self.clock())
            await self._move(client, uid)
            return "forged"
        if result.report is None:
            self._left_alone.add(uid)
            return "left"
        await self.ledger.apply_reports([result.report], self.clock())
        suppression = result.suppression(self.clock())
        if suppression is not None:
            await self.ledger.suppress([suppression])
        await self._move(client, uid)
        return "recorded"

    async def _move(self, client: aioimaplib.IMAP4, uid: bytes) -> None:
        if client.has_capability("MOVE"):
            await _ok(client.uid("move", uid.decode(), self.processed_folder), "MOVE")
            return
        await _ok(client.uid("copy", uid.decode(), self.processed_folder), "COPY")
        await _ok(client.uid("store", uid.decode(), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
        if client.has_capability("UIDPLUS"):
            await _ok(client.uid("expunge", uid.decode()), "UID EXPUNGE")

    async def _connect(self) -> aioimaplib.IMAP4:
        account = self.account
        kind = aioimaplib.IMAP4_SSL if account.secure else aioimaplib.IMAP4
        client = kind(host=account.host, port=account.port, timeout=_IMAP_TIMEOUT_SECONDS)
        await client.wait_hello_from_server()
        try:
            await _ok(client.login(account.user, account.password), "LOGIN")
        except BaseException:
            await _logout(client)
            raise
        return client


async def _ok(command: object, what: str, allow_no: bool = False) -> aioimaplib.Response:
    response: aioimaplib.Response = await command  # type: ignore[misc]
    if response.result == "OK" or (allow_no and response.result == "NO"):
        return response
    text = b" ".join(bytes(line) for line in response.lines[-1:]).decode("utf-8", "replace")
    raise ImapError(f"{what}: {response.result} {' '.join(text.split())}")


async def _logout(client: aioimaplib.IMAP4) -> None:
    try:
        await asyncio.wait_for(client.logout(), 10)
    except Exception:  # the connection is going away anyway
        return
