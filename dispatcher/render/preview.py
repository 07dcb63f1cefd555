"""What each contact would receive for a notice, without sending: rendered, counted, written.

Used by `dispatcher preview`; it writes files only under the folder it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dispatcher.files import PRIVATE_FILE, PRIVATE_FOLDER, replace_file, safe_file_name
from dispatcher.keys import Keys
from dispatcher.render.fax import FaxPages
from dispatcher.render.mail import build_email, message_id
from dispatcher.render.templates import Message, Renderer
from dispatcher.render.twiml import call_twiml
from dispatcher.table import Channel, Config, Contact, Notice


@dataclass(frozen=True)
class Preview:
    """One rendered message, with the files written for it and, for fax, its page count."""

    message: Message
    files: tuple[Path, ...] = ()
    pages: int | None = None

    def to_json(self) -> dict[str, Any]:
        m = self.message
        return {
            "contact": m.contact.id,
            "channel": m.channel.value,
            "address": m.address,
            "subject": m.subject,
            "body": m.body,
            "segments": m.segments.count if m.segments else None,
            "encoding": m.segments.encoding.value if m.segments else None,
            "pages": self.pages,
            "files": [str(f) for f in self.files],
        }


@dataclass
class ChannelTotals:
    """The dry run of one channel of a broadcast."""

    channel: Channel
    recipients: int = 0
    segments: int = 0
    pages: int = 0
    lacking: list[str] = field(default_factory=list)

    def add(self, contact: Contact, preview: Preview | None) -> None:
        if preview is None:
            self.lacking.append(contact.id)
            return
        self.recipients += 1
        if preview.message.segments:
            self.segments += preview.message.segments.count
        self.pages += preview.pages or 0


class Previewer:
    """Renders a notice for contacts as if sent at ``sent_at`` and, given a folder, writes
    each message there."""

    def __init__(self, config: Config, renderer: Renderer, out_dir: Path | None,
                 sent_at: datetime, keys: Keys,
                 fax_png: Callable[[Path, Path], None] | None = None) -> None:
        self._config = config
        self._keys = keys  # the e-mail's Message-ID is the one that would be sent
        self.sent_at = sent_at
        self._renderer = renderer
        self._fax_pages = FaxPages(config.settings.templates_dir)
        self.out_dir = out_dir
        self._fax_png = fax_png  # writes a fax PDF's first page as a PNG, if given

    @property
    def distinct_fax_pages(self) -> int:
        return self._fax_pages.rendered

    def preview(self, notice: Notice, contact: Contact, channel: Channel) -> Preview | None:
        """The contact's message on ``channel``, or None if the contact has no such address."""
        if not contact.address(channel):
            return None
        message = self._renderer.render(notice, contact, channel, self.sent_at)
        if channel is Channel.FAX:
            return self._fax(message)
        if self.out_dir is None:
            return Preview(message)
        return Preview(message, (self._write_text(notice, message),))

    def email_headers_and_body(self, notice: Notice, message: Message) -> bytes:
        from_mailbox = self._config.messages.mail_from
        return build_email(message, from_mailbox, self.sent_at, message_id(
            self._keys, notice.key, message.contact.id, message.channel.value, from_mailbox),
            self._config.helpdesk.reply_to)

    def _fax(self, message: Message) -> Preview:
        document = self._fax_pages.render(message.body)
        if self.out_dir is None:
            return Preview(message, (), document.pages)
        pdf = _write(self._path(message, "fax.pdf"), document.pdf)
        files = [pdf]
        if self._fax_png is not None:
            png = pdf.with_suffix(".png")
            self._fax_png(pdf, png)
            png.chmod(PRIVATE_FILE)
            files.append(png)
        return Preview(message, tuple(files), document.pages)

    def _write_text(self, notice: Notice, message: Message) -> Path:
        if message.channel is Channel.EMAIL:
            return _write(self._path(message, "email.eml"),
                          self.email_headers_and_body(notice, message))
        if message.script is not None:  # what Twilio is given to say to a person
            return _write(self._path(message, "voice.xml"), call_twiml(
                message.script, self._config.messages.voice, None).encode("utf-8"))
        return _write(self._path(message, "sms.txt"), (message.body + "\n").encode("utf-8"))

    def _path(self, message: Message, suffix: str) -> Path:
        assert self.out_dir is not None
        return self.out_dir / f"{safe_file_name(message.contact.id)}.{suffix}"


def _write(path: Path, data: bytes) -> Path:
    """A preview holds a contact's data: owner-only, like the outbox."""
    return replace_file(path, data, PRIVATE_FILE, PRIVATE_FOLDER)


def channels_to_preview(
    window_channels: Iterable[Channel], only: list[Channel] | None
) -> list[Channel]:
    """The ``--channel`` options if any, else the window's channels, else every channel."""
    if only:
        return list(dict.fromkeys(only))
    return list(window_channels) or list(Channel)
