"""The database: its URL, the engine opened with the schema in place, SQLite's settings."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, func, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError as UrlError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateColumn

from dispatcher.errors import ConfigError, LedgerError, LedgerUnavailable, single
from dispatcher.files import create_private
from dispatcher.ledger.tables import deliveries, metadata, notice_releases, notices


async def open_engine(url: URL) -> AsyncEngine:
    """Connect, and create the tables on first use."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        create_private(Path(url.database or ""))  # contact data: owner-only, WAL included
    # pre_ping: a connection the server dropped (a restart) is replaced, not handed out
    engine = create_async_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        if engine.dialect.name == "sqlite":
            await _use_wal(engine)
        await _create_schema(engine)
    except (SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        raise LedgerError(f"cannot open the ledger {url.render_as_string()}: {exc}") from exc
    return engine


# What a ledger that cannot answer now says, as opposed to one that answers with an error.
_UNAVAILABLE_MARKS = ("database is locked", "database is busy", "unable to open database",
                      "disk I/O error", "CannotConnectNow", "ConnectionDoesNotExist",
                      "the database system is", "connection was closed", "too many clients",
                      "terminating connection")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the ledger is away (worth waiting for) rather than wrong."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    description = f"{type(exc).__name__}: {exc}"
    return any(mark in description for mark in _UNAVAILABLE_MARKS)


class EngineUser:
    """What the ledger's query groups share: the engine, and an insert that ignores rows
    already there (both dialects)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    def _insert_ignore(self, table: Any) -> Any:
        dialect = postgresql if self._postgres else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def _begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction; LedgerUnavailable if the database does not answer."""
        return _answering(self._engine.begin())

    @asynccontextmanager
    async def _begin_serial(self, key: str) -> AsyncIterator[AsyncConnection]:
        """A transaction that reads, then writes on what it read, serialised with every
        other one on ``key`` (a window's id): SQLite takes its write lock at the start
        (``BEGIN IMMEDIATE``), PostgreSQL an advisory lock on the key until the end."""
        async with self._begin() as conn:
            if self._postgres:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": lock_key(key)})
            else:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def _connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reading; LedgerUnavailable if the database does not answer."""
        return _answering(self._engine.connect())


@asynccontextmanager
async def _answering(opening: AbstractAsyncContextManager[AsyncConnection]
                     ) -> AsyncIterator[AsyncConnection]:
    """The connection ``opening`` gives; an error that means the database is away becomes
    LedgerUnavailable, any other is raised as it is."""
    try:
        async with opening as conn:
            yield conn
    except LedgerUnavailable:
        raise
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise LedgerUnavailable(f"the ledger does not answer: {type(exc).__name__}: {exc}"
                                ) from exc


def engine_url(raw: str, base_dir: Path) -> URL:
    """The async driver URL for ``raw``; a relative SQLite path is relative to ``base_dir``."""
    try:
        url = make_url(raw)
    except UrlError:
        raise single(ConfigError, "[dispatcher].ledger", f"{raw!r} is not a database URL"
                     ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            database = str((base_dir / database).resolve())
        return url.set(drivername="sqlite+aiosqlite", database=database)
    if backend == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    raise single(ConfigError, "[dispatcher].ledger",
                 f"{raw!r}: only sqlite:/// and postgresql:// ledgers are supported")


async def _create_schema(engine: AsyncEngine) -> None:
    """Create missing tables while holding a database-wide lock, so that processes opening a
    new ledger together (two daemons, a daemon and a `send`) do not both create a table."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        had_releases = await conn.run_sync(
            lambda sync: inspect(sync).has_table(notice_releases.name))
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_add_missing_columns)
        if not had_releases:
            await conn.execute(_released_as_planned())


def _released_as_planned() -> Any:
    """A ledger made before release times: each channel a notice has deliveries on was
    released when the notice was created (the claim hands out nothing unreleased)."""
    d, n = deliveries.c, notices.c
    planned = (select(d.notice_id, d.channel, func.min(n.created_at))
               .join(notices, n.id == d.notice_id).group_by(d.notice_id, d.channel))
    return notice_releases.insert().from_select(["notice_id", "channel", "release_at"], planned)


def _add_missing_columns(conn: Connection) -> None:
    """Bring a ledger made by an older version up to date: columns added since are nullable,
    so adding them is all it takes; indexes added since are created."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                definition = CreateColumn(column).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {definition}")
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)


_SCHEMA_LOCK = 0x64697370  # "disp": any constant shared by every dispatcher process


def lock_key(name: str) -> int:
    """PostgreSQL's advisory lock number for ``name``: a signed 64-bit digest of it."""
    return int.from_bytes(hashlib.sha256(f"dispatcher:{name}".encode()).digest()[:8], "big",
                          signed=True)


async def _use_wal(engine: AsyncEngine) -> None:
    """Put the SQLite file in WAL mode (it stays so). Switching needs the file to itself and
    SQLite answers "locked" at once, without waiting, while another process holds it (a
    second daemon creating the same new ledger): try again for a while."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


WAL_SWITCH_SECONDS = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
