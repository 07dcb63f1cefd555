"""The ``smtp`` e-mail backend: aiosmtplib over a pool of reused connections.

One connection carries one message at a time, so the pool holds ``concurrency``
connections. A 4xx reply or connection trouble is transient; a 5xx reply is permanent. A
server that cannot be connected to, or answers 421 (closing), is unavailable: the channel
pauses instead of counting an attempt against the message.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from email.utils import parseaddr
from typing import ClassVar

import aiosmtplib

from dispatcher.errors import (
    ChannelError,
    PermanentError,
    RefusedError,
    TransientError,
    UnavailableError,
)
from dispatcher.render import build_email
from dispatcher.send.channels.base import Backend, Outgoing, Receipt, secret
from dispatcher.send.channels.envelope import DeliveryTokens, Envelope
from dispatcher.table import SmtpSettings


def smtp_login(config: SmtpSettings, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The user name and password from the environment (None, None: no login);
    SetupError naming the key if a variable is not set."""
    key = "[channels.email]"
    username = (secret(env, config.username_env, f"{key} username_env")
                if config.username_env else None)
    password = (secret(env, config.password_env, f"{key} password_env")
                if config.password_env else None)
    return username, password


class SmtpPool(Backend):
    name: ClassVar[str] = "smtp"

    def __init__(self, config: SmtpSettings, concurrency: int, mail_from: str,
                 env: Mapping[str, str], tokens: DeliveryTokens, reply_to: str | None = None
                 ) -> None:
        self._config = config
        self._mail_from = mail_from
        self._tokens = tokens
        self._reply_to = reply_to
        self._username, self._password = smtp_login(config, env)
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)
        self._envelope_from = parseaddr(mail_from)[1]

    async def send(self, outgoing: Outgoing) -> Receipt:
        message, from_mailbox = outgoing.message, self._mail_from
        message_id = self._tokens.message_id(outgoing.notice_key, message.contact.id,
                                             message.channel.value, from_mailbox)
        raw = build_email(message, from_mailbox, outgoing.sent_at, message_id, self._reply_to)
        return await self._send_raw(raw, message.address, self._tokens.envelope(outgoing.tag))

    async def deliver(self, mail: bytes, recipient: str, key: str, tag: str
                      ) -> Receipt:
        return await self._send_raw(mail, recipient, self._tokens.envelope(tag))

    async def _send_raw(self, raw: bytes, recipient: str, envelope: Envelope) -> Receipt:
        async with self._slots:
            connection = await self._connection(recipient)
            try:
                mail_options, rcpt_options = await _dsn_options(connection, envelope)
                _, response = await connection.sendmail(
                    envelope.sender or self._envelope_from, [recipient], raw,
                    mail_options=mail_options, rcpt_options=rcpt_options)
            except BaseException as exc:
                await _discard(connection)
                if isinstance(exc, Exception):
                    raise _channel_error(exc, recipient) from exc
                raise
            self._idle.put_nowait(connection)
        return Receipt(response.strip() or None)

    async def close(self) -> None:
        while not self._idle.empty():
            await _discard(self._idle.get_nowait(), polite=True)

    async def _connection(self, recipient: str) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection.is_connected:
                return connection
        c = self._config
        connection = aiosmtplib.SMTP(
            hostname=c.host, port=c.port, timeout=c.timeout_seconds,
            use_tls=c.security == "tls", start_tls=c.security == "starttls",
            cert_bundle=str(c.ca_file) if c.ca_file else None,
            username=self._username, password=self._password)
        try:
            await connection.connect()
        except Exception as exc:
            error = _channel_error(exc, recipient)
            if type(error) is TransientError and not _is_tls_trouble(exc):
                error = UnavailableError(str(error), error.code, recipient)
            raise error from exc
        return connection


async def _dsn_options(connection: aiosmtplib.SMTP, envelope: Envelope
                       ) -> tuple[list[str], list[str]]:
    """Ask for delivery status notifications (RFC 3461) where the server offers them: on
    failure, delay and success, with the headers only, naming the delivery (ENVID)."""
    if connection.is_ehlo_or_helo_needed:
        await connection.ehlo()
    if not connection.supports_extension("dsn"):
        return [], []
    return ["RET=HDRS", f"ENVID={_xtext(envelope.envid)}"], ["NOTIFY=SUCCESS,FAILURE,DELAY"]


def _xtext(value: str) -> str:
    """RFC 3461 xtext: '+', '=' and anything outside printable ASCII as +HH."""
    return "".join(f"+{ord(c):02X}" if c in "+=" or not "!" <= c <= "~" else c for c in value)


async def _discard(connection: aiosmtplib.SMTP, polite: bool = False) -> None:
    try:
        if polite and connection.is_connected:
            await connection.quit()
        else:
            connection.close()
    except (aiosmtplib.SMTPException, OSError):
        connection.close()


def _channel_error(exc: Exception, recipient: str) -> ChannelError:
    """4xx and connection trouble are transient, 5xx permanent; the reply code is kept."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # 454 and the like: the server cannot check the login now; 535: the login is wrong
        refused: type[ChannelError] = RefusedError if 500 <= exc.code < 600 else UnavailableError
        return refused(f"SMTP login refused: {exc.code} {exc.message}", str(exc.code),
                       recipient)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if exc.code == 421:
            return UnavailableError(f"{exc.code} {exc.message}", str(exc.code), recipient)
        kind = PermanentError if 500 <= exc.code < 600 else TransientError
        return kind(f"{exc.code} {exc.message}", str(exc.code), recipient)
    return TransientError(f"SMTP connection: {type(exc).__name__}: {exc}", None, recipient)


def _is_tls_trouble(exc: BaseException) -> bool:
    """A certificate or handshake problem: the server answered; waiting will not fix it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
