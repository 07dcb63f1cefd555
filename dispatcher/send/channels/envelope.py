"""The SMTP envelope of a delivery's e-mail: its own return path (VERP), so that a bounce
names the delivery it is about, and the DSN envelope id.

The return path holds a token: the delivery's tag and an HMAC of it under a key only the
dispatcher knows, so a forged bounce cannot name a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dispatcher.errors import SetupError, single
from dispatcher.table import EmailReceipts

TAG_PREFIX = "dispatcher-"
_MAC_LENGTH = 16


@dataclass(frozen=True)
class Envelope:
    sender: str | None  # None: the channel's from address
    envid: str


@dataclass(frozen=True)
class ReturnPaths:
    """``bounces+{token}@example.jp`` per delivery, signed with ``key``."""

    template: str
    key: bytes

    def envelope(self, tag: str) -> Envelope:
        return Envelope(self.template.replace("{token}", self.token(tag)), tag)

    def token(self, tag: str) -> str:
        return f"{tag.removeprefix(TAG_PREFIX)}-{self._mac(tag)}"

    def tag_of(self, token: str) -> str | None:
        """The delivery tag a token names, or None if the token is not one of ours."""
        body, _, mac = token.rpartition("-")
        tag = f"{TAG_PREFIX}{body}"
        if not body or not hmac.compare_digest(mac.lower(), self._mac(tag)):
            return None
        return tag

    def tokens_in(self, text: str) -> list[str]:
        """Every token found in ``text`` in an address of this template (a bounce's
        headers)."""
        before, _, after = self.template.partition("{token}")
        pattern = re.escape(before) + r"([0-9]+-[0-9a-f]+-[0-9a-f]+)" + re.escape(after)
        return re.findall(pattern, text, re.IGNORECASE)

    def _mac(self, tag: str) -> str:
        return hmac.new(self.key, tag.encode(), hashlib.sha256).hexdigest()[:_MAC_LENGTH]


def plain_envelope(tag: str) -> Envelope:
    return Envelope(None, tag)


def return_paths(receipts: EmailReceipts, env: Mapping[str, str]) -> ReturnPaths | None:
    """The configured VERP addresses; None without ``bounce_address``. SetupError if the
    key's environment variable is not set."""
    if receipts.bounce_address is None:
        return None
    key = env.get(receipts.token_key_env)
    if not key:
        raise single(SetupError, "[receipts.email] token_key_env",
                     f"environment variable {receipts.token_key_env} is not set (the key "
                     "that signs each delivery's bounce address)")
    return ReturnPaths(receipts.bounce_address, key.encode())


def tag_id(tag: str) -> int | None:
    """The delivery id in a tag (``dispatcher-{id}-{digest}``)."""
    match = re.fullmatch(re.escape(TAG_PREFIX) + r"([0-9]+)-[0-9a-f]+", tag)
    return int(match.group(1)) if match else None
