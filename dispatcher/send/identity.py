"""Names that identify a delivery wherever it goes: the provider tag (signed into tokens by
``channels.envelope``), and the owner of a lease."""

from __future__ import annotations

import hashlib
import os
import random
import socket

from dispatcher.ledger import (
    NoticeRecord,
)


def worker_id() -> str:
    """Names this process's leases: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


def delivery_tag(record: NoticeRecord, delivery_id: int) -> str:
    """A short name for a delivery that another ledger (a rehearsal, a fresh database) on
    the same provider cannot repeat: its id and a digest of its notice's identity."""
    identity = f"{record.id}|{record.window_id}|{record.slot}|{record.phase}|{record.created_at}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return f"dispatcher-{delivery_id}-{digest}"
