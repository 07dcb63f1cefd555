"""Every value that links a report back to a delivery, signed with the deployment's key
(``dispatcher.keys``), so that a forged report names no delivery:

- the SMTP envelope of a delivery's e-mail: its own return path (VERP,
  ``bounces+{token}@example.jp``) and the DSN envelope id (``dispatcher-{token}``);
- the Message-ID (``<{signature}@domain>``), the same for a delivery however often it is
  sent, and known before it is sent (the preview shows it);
- the Twilio status callback's URL (``…/twilio/status/{id}-{signature}``).

A token is ``{delivery id}-{digest of its notice}-{signature}``: the signature verifies
it without the ledger; the digest tells this ledger's deliveries from a rehearsal's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dispatcher.keys import KeyFile, Keys
from dispatcher.render import (
    MESSAGE_ID,
    MESSAGE_ID_LENGTH,
    message_id,
    message_id_domain,
    message_id_text,
)
from dispatcher.table import Config

TAG_PREFIX = "dispatcher-"
_SIGNATURE = 16  # hex digits: 64 bits
_TOKEN = r"[0-9]+-[0-9a-f]+-[0-9a-f]+"
# an envelope id of ours, signed or not (unsigned ones were sent before the key existed)
_ENVID = re.compile(re.escape(TAG_PREFIX) + r"([0-9]+-[0-9a-f]+(?:-[0-9a-f]+)?)",
                    re.IGNORECASE)
_CALLBACK = re.compile(r"([0-9]+)-([0-9a-f]+)")


@dataclass(frozen=True)
class Envelope:
    sender: str | None  # None: the channel's from address
    envid: str


@dataclass(frozen=True)
class Verified:
    """What a token names: the delivery's tag, or nothing; ``forged`` when it has the
    shape of one of ours but its signature does not verify."""

    tag: str | None
    forged: bool = False


NOT_OURS = Verified(None)
FORGED = Verified(None, forged=True)


@dataclass
class DeliveryTokens:
    """Signs with the current key; verifies with it and with keys retired less than
    ``keep`` ago."""

    key_file: KeyFile
    keep: timedelta
    bounce_address: str | None = None  # "bounces+{token}@example.jp"; None: no VERP
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def of(cls, config: Config) -> DeliveryTokens:
        receipts = config.receipts
        return cls(KeyFile(receipts.secret_file), timedelta(days=receipts.old_secret_days),
                   receipts.email.bounce_address)

    @property
    def keys(self) -> Keys:
        return self.key_file.keys()

    def envelope(self, tag: str) -> Envelope:
        token = self.token(tag)
        sender = (self.bounce_address.replace("{token}", token)
                  if self.bounce_address is not None else None)
        return Envelope(sender, TAG_PREFIX + token)

    def token(self, tag: str) -> str:
        return f"{tag.removeprefix(TAG_PREFIX)}-{self.keys.sign('tag', tag, _SIGNATURE)}"

    def tag_of(self, token: str) -> Verified:
        """The delivery tag a token names."""
        body, _, signature = token.rpartition("-")
        tag = f"{TAG_PREFIX}{body.lower()}"
        if not body or not self.keys.verifies("tag", tag, signature, self.clock(), self.keep):
            return FORGED
        return Verified(tag)

    def tag_of_envid(self, envid: str) -> Verified:
        """The delivery tag a DSN's envelope id names; not ours unless it has our shape,
        forged if it has our shape and no signature that verifies."""
        match = _ENVID.fullmatch(envid.strip())
        return self.tag_of(match.group(1)) if match else NOT_OURS

    def tokens_in(self, text: str) -> list[str]:
        """Every token found in ``text`` in an address of the bounce template (a bounce's
        headers)."""
        if self.bounce_address is None:
            return []
        before, _, after = self.bounce_address.partition("{token}")
        pattern = re.escape(before) + f"({_TOKEN})" + re.escape(after)
        return re.findall(pattern, text, re.IGNORECASE)

    def message_id(self, notice_key: str, contact_id: str, channel: str,
                   from_mailbox: str) -> str:
        return message_id(self.keys, notice_key, contact_id, channel, from_mailbox)

    def message_ids(self, notice_key: str, contact_id: str, channel: str,
                    from_mailbox: str) -> list[str]:
        """The delivery's Message-ID under every key that still verifies."""
        text = message_id_text(notice_key, contact_id, channel)
        domain = message_id_domain(from_mailbox)
        return [f"<{signature}@{domain}>" for signature in self.keys.signatures(
            MESSAGE_ID, text, MESSAGE_ID_LENGTH, self.clock(), self.keep)]

    def callback(self, delivery_id: int) -> str:
        """The last part of a delivery's Twilio status callback URL."""
        return f"{delivery_id}-{self.keys.sign('callback', str(delivery_id), _SIGNATURE)}"

    def callback_id(self, token: str) -> int | None:
        """The delivery a callback URL's last part names; None if it does not verify."""
        match = _CALLBACK.fullmatch(token)
        if match is None or not self.keys.verifies("callback", match.group(1), match.group(2),
                                                   self.clock(), self.keep):
            return None
        return int(match.group(1))


def tag_id(tag: str) -> int | None:
    """The delivery id in a tag (``dispatcher-{id}-{digest}``)."""
    match = re.fullmatch(re.escape(TAG_PREFIX) + r"([0-9]+)-[0-9a-f]+", tag)
    return int(match.group(1)) if match else None
