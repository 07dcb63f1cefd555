"""The ``outbox`` backend: every message becomes a file under ``path`` (a call, its TwiML);
no account needed.

Files are named after the notice and the contact, so sending the same delivery again
rewrites the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from dispatcher.errors import TransientError
from dispatcher.files import PRIVATE_FILE, PRIVATE_FOLDER, replace_file, safe_file_name
from dispatcher.render import build_email, call_twiml
from dispatcher.send.channels.base import Backend, Outgoing, Receipt
from dispatcher.send.channels.envelope import DeliveryTokens
from dispatcher.table import JAPANESE_VOICES, Channel


class Outbox(Backend):
    name: ClassVar[str] = "outbox"

    def __init__(self, folder: Path, from_mailbox: str, tokens: DeliveryTokens,
                 reply_to: str | None = None, voice: str = JAPANESE_VOICES[0]) -> None:
        self.folder = folder
        self._from = from_mailbox
        self._tokens = tokens
        self._reply_to = reply_to
        self._voice = voice

    async def send(self, outgoing: Outgoing) -> Receipt:
        message = outgoing.message
        stem = f"{safe_file_name(message.contact.id)}-{safe_file_name(message.address)}"
        folder = self.folder / safe_file_name(outgoing.notice_key)
        if message.channel is Channel.EMAIL:
            message_id = self._tokens.message_id(outgoing.notice_key, message.contact.id,
                                                 message.channel.value, self._from)
            data = self._return_path(outgoing.tag) + build_email(
                message, self._from, outgoing.sent_at, message_id, self._reply_to)
            path = folder / f"{stem}.eml"
        elif message.channel is Channel.FAX:
            assert outgoing.document is not None, "a fax is sent with its rendered document"
            path, data = folder / f"{stem}.pdf", outgoing.document.pdf
        elif message.script is not None:  # a call: the TwiML a person would hear
            path = folder / f"{stem}.xml"
            data = call_twiml(message.script, self._voice, None).encode()
        else:
            path = folder / f"{stem}.txt"
            data = f"To: {message.address}\n\n{message.body}\n".encode()
        return _write(path, data, message.address)

    async def deliver(self, mail: bytes, recipient: str, key: str, tag: str
                      ) -> Receipt:
        """Write a ready e-mail (the fax gateway's, when e-mail goes to the outbox)."""
        path = self.folder / safe_file_name(key) / f"{safe_file_name(recipient)}.eml"
        return _write(path, self._return_path(tag) + mail, recipient)

    def _return_path(self, tag: str) -> bytes:
        """The header a mailbox adds on delivery: where a bounce of this message goes."""
        sender = self._tokens.envelope(tag).sender
        return f"Return-Path: <{sender}>\r\n".encode() if sender is not None else b""


def _write(path: Path, data: bytes, recipient: str) -> Receipt:
    try:
        replace_file(path, data, PRIVATE_FILE, PRIVATE_FOLDER)  # contacts' messages
    except OSError as exc:  # a full disk or a wrong path: the operator can fix it in time
        raise TransientError(f"cannot write to the outbox: {exc}", None, recipient) from exc
    return Receipt(str(path))
