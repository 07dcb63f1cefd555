"""Files: written whole (a reader sees the old version or the new one, never half of one),
and kept owner-only where they hold contact data or keys."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

PRIVATE_FILE = 0o600    # contact data and keys: the owner only
PRIVATE_FOLDER = 0o700
PUBLIC_FOLDER = 0o755

_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._+@-]")


def safe_file_name(text: str) -> str:
    """``text`` (a contact's id or address, a notice's key) as one file name: anything
    but letters, digits and ``._+@-`` becomes ``_``, and so does a leading dot (no ``..``,
    no hidden file)."""
    name = _UNSAFE_IN_FILE_NAME.sub("_", text)
    return "_" + name[1:] if name.startswith(".") else name


def replace_file(path: Path, data: bytes, mode: int, folder_mode: int = PUBLIC_FOLDER
                 ) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (owner-only until renamed), flush
    it to disk, give it ``mode`` and rename it over ``path``; its folder is made with
    ``folder_mode`` if missing."""
    _make_folders(path.parent, folder_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _make_folders(folder: Path, mode: int) -> None:
    """``folder`` and any missing parent, each with ``mode`` (mkdir's ``parents`` would
    give the parents the default mode)."""
    if folder.is_dir():
        return
    _make_folders(folder.parent, mode)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=mode)


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only, with an owner-only folder, unless it exists.
    (SQLite gives a database's WAL and shared-memory files the database file's mode.)"""
    _make_folders(path.parent, PRIVATE_FOLDER)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def readable_by_others(paths: Iterable[Path]) -> list[Path]:
    """Those of ``paths`` that exist and that the group or other users may read."""
    exposed = []
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if stat.S_IMODE(mode) & 0o044:
            exposed.append(path)
    return exposed
