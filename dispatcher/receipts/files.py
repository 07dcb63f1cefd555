"""Mail files as `receipts read-mail` takes them: an .eml, an mbox, or a Maildir (or a
folder of .eml files), each message as (a name to show, its bytes)."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

from dispatcher.errors import ArgumentError, single


def mails_in(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """Every message under ``paths``, in order; ArgumentError for a path not there."""
    for path in paths:
        if not path.exists():
            raise single(ArgumentError, str(path), "no such file or folder")
    for path in paths:
        yield from _mails_at(path)


def _mails_at(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            yield from _maildir(path)
        else:
            for child in sorted(p for p in path.iterdir() if not p.name.startswith(".")):
                yield from _mails_at(child)
        return
    with path.open("rb") as file:
        head = file.read(5)
    if head == b"From ":
        box = mailbox.mbox(path, create=False)
        for index, key in enumerate(box.iterkeys(), start=1):
            yield f"{path}#{index}", box.get_bytes(key)
        return
    yield str(path), path.read_bytes()


def _maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield f"{path}/{key}", box.get_bytes(key)
