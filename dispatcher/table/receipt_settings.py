"""What the operator declares about receipts (``[receipts]``, ``[receipts.sms]``,
``[receipts.email]``, ``[receipts.fax_gateway]``) and about the daemon's HTTP server
(``[http]``): plain values, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SECRET_FILE = "var/receipts-secret"


@dataclass(frozen=True)
class SmsReceipts:
    poll_after_minutes: float = 10.0
    poll_per_second: float = 5.0
    # Twilio error codes after which a new message is sent (per [retry]); any other code
    # of an undelivered or failed message is final.
    retried_codes: tuple[str, ...] = ("30003", "30008")
    final_codes: tuple[str, ...] = ("30005", "30006", "30007", "21610")


@dataclass(frozen=True)
class EmailReceipts:
    bounce_address: str | None = None  # "bounces+{token}@example.jp": one per delivery
    imap_url: str | None = None
    allow_plaintext: bool = False  # imap:// (the login in clear) only if set
    imap_user_env: str = "DISPATCHER_IMAP_USER"
    imap_password_env: str = "DISPATCHER_IMAP_PASSWORD"
    processed_folder: str = "dispatcher-processed"
    poll_seconds: float = 60.0


@dataclass(frozen=True)
class FaxGatewayReceipts:
    delivered_pattern: re.Pattern[str] | None = None
    failed_pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Receipts:
    grace_minutes: float = 30.0
    # the key that signs every token linking a report to a delivery; made on first use
    secret_file: Path = Path(DEFAULT_SECRET_FILE)
    old_secret_days: float = 30.0  # a rotated-out key still verifies this long
    sms: SmsReceipts = field(default_factory=SmsReceipts)
    email: EmailReceipts = field(default_factory=EmailReceipts)
    fax_gateway: FaxGatewayReceipts = field(default_factory=FaxGatewayReceipts)


@dataclass(frozen=True)
class Http:
    """The daemon's HTTP server (Twilio's status callbacks); off unless ``listen`` is set."""

    host: str | None = None
    port: int = 8025
    public_url: str | None = None  # how Twilio reaches it, e.g. https://dispatcher.example.jp
    metrics: bool = True  # GET /metrics, for Prometheus
    # the reverse proxies whose X-Forwarded-For is believed (addresses or networks); none:
    # the peer's address counts, for the login limits and the audit log
    trusted_proxies: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.host is not None
