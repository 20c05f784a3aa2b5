"""The SQLite backend: one aiosqlite connection per process, WAL, versioned schema.

The approval queue and the audit log live in the same file so that a state transition
and its audit record commit together. Several processes share it (the gateway and the
CLI): every write runs in ``BEGIN IMMEDIATE``, which takes SQLite's single write lock up
front, so writers queue behind each other (``busy_timeout``) instead of failing halfway
through a transaction; that lock is also why ``lock_row`` and ``lock_named`` have nothing
to add here. Inside one process an ``asyncio.Lock`` keeps coroutines from interleaving
statements on the shared connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio.to_thread

from gateway.db import BlockingConnection, Connection, Database, Dialect
from gateway.errors import ConfigError, DatabaseError, DuplicateKey
from gateway.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["DIALECT", "SqliteDatabase"]

T = TypeVar("T")

DIALECT = Dialect(
    name="sqlite",
    json_list_template="json_group_array({})",
    json_tuple_template="json_array({})",
    as_json_template="json({})",
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise DuplicateKey(f"SQLite: {exc}") from exc
        raise DatabaseError(f"SQLite: {exc}") from exc
    except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection was closed under us
        raise DatabaseError(f"SQLite: {exc}") from exc


class _SqliteConnection(Connection):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with _translated():
            cursor = await self._conn.execute(sql, list(params))
            return int(cursor.rowcount)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with _translated():
            return [tuple(row) for row in await self._conn.execute_fetchall(sql, list(params))]

    # BEGIN IMMEDIATE took the one write lock: no other writer runs until this one ends.
    async def lock_row(self, table: str, key: str) -> None:
        pass

    async def lock_named(self, name: str) -> None:
        pass


class _Blocking(BlockingConnection):
    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._raw.execute(sql, list(params)).rowcount)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._raw.execute(sql, list(params)).fetchall()  # to its end: nothing left in progress
        return tuple(rows[0]) if rows else None


def _transaction(raw: sqlite3.Connection, work: Callable[[BlockingConnection], T]) -> T:
    """On aiosqlite's thread: ``BEGIN IMMEDIATE``, ``work``, ``COMMIT``; a rollback if
    either of the last two fails."""
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = work(_Blocking(raw))
        raw.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            raw.execute("ROLLBACK")
        raise
    return result


class SqliteDatabase(Database):
    """``Database`` over one SQLite file."""

    dialect = DIALECT
    blocking_writes = True

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._wrapped = _SqliteConnection(conn)
        self._lock = asyncio.Lock()
        self.path = path
        self.location = str(path)

    @classmethod
    async def connect(cls, path: Path, *, busy_timeout_seconds: float = 10.0) -> SqliteDatabase:
        """Open (creating if needed) the database at ``path`` and migrate it to
        ``SCHEMA_VERSION``. Raises ``ConfigError`` if the file cannot be used."""
        await asyncio.to_thread(_prepare_file, path)
        # isolation_level=None: no implicit transactions, we issue BEGIN ourselves.
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_seconds)
        db = cls(conn, path)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only power loss can
            # roll back the last commits.
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            # A 16 MiB page cache and memory-mapped reads keep the CLI's and the executor's
            # index lookups off the read() syscall path on a large queue.
            await conn.execute("PRAGMA cache_size = -16384")
            await conn.execute("PRAGMA mmap_size = 268435456")
            await db._migrate()
        except (sqlite3.Error, DatabaseError) as exc:
            await conn.close()
            raise ConfigError(f"cannot open the database at {path}: {exc}") from exc
        except BaseException:
            # A refused schema too: left to the garbage collector, the connection's
            # worker thread outlives the event loop it reports to.
            await conn.close()
            raise
        return db

    async def _migrate(self) -> None:
        async with self.write() as conn:
            row = await conn.fetchone("PRAGMA user_version")
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"the database at {self.path} has schema version {current}, newer than this "
                    f"gateway's {SCHEMA_VERSION}: upgrade the gateway"
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in _split(MIGRATIONS[version]):
                    await conn.execute(statement)
            if current != SCHEMA_VERSION:
                await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed when the block ends,
        rolled back if it raises."""
        async with self._lock:
            try:
                with _translated():
                    await self._conn.execute("BEGIN IMMEDIATE")
                yield self._wrapped
            except BaseException:
                await self._rollback()
                raise
            with _translated():
                await self._conn.execute("COMMIT")

    async def write_blocking(self, work: Callable[[BlockingConnection], T]) -> T:
        """``work`` in one ``BEGIN IMMEDIATE`` transaction and one trip to the connection's
        thread, instead of a trip per statement: an audit append holds the connection (and
        SQLite's write lock) for one trip, not four. Once queued, the transaction runs to
        its end even if the caller is cancelled."""
        async with self._lock:
            with _translated():
                # aiosqlite runs every statement as a function on its thread through
                # ``_execute``; it has no public way to run several in one go.
                result: T = await self._conn._execute(_transaction, self._conn._conn, work)  # type: ignore[no-untyped-call]
                return result

    async def _rollback(self) -> None:
        # A writer cancelled while its BEGIN is queued in aiosqlite's thread still gets that
        # BEGIN run later; without this ROLLBACK (queued behind it, and shielded from a second
        # cancellation) the connection stays inside a transaction and the next writer fails
        # with "cannot start a transaction within a transaction".
        with contextlib.suppress(sqlite3.Error, ValueError):  # no transaction was active, or closed
            await asyncio.shield(self._conn.execute("ROLLBACK"))

    @property
    def in_transaction(self) -> bool:
        """Whether the shared connection is inside a transaction (it never is between writes)."""
        return bool(self._conn.in_transaction)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """The connection for reads, outside any transaction: each statement sees its own
        consistent snapshot (readers write queries that need one snapshot as one statement)."""
        async with self._lock:
            yield self._wrapped

    async def writable(self) -> bool:
        return await anyio.to_thread.run_sync(_database_writable, self.path)

    async def wait_for_change(self, key: str, seconds: float) -> bool:
        """SQLite has no notifications across processes: the caller polls every ``seconds``."""
        await anyio.sleep(max(0.0, seconds))
        return False

    def watch(self, key: str) -> None:
        pass

    async def defer_checkpoints(self, deferred: bool = True) -> None:
        """Stop (or resume) SQLite's automatic WAL checkpoints on this connection.

        By default the commit that grows the WAL past 1000 pages copies it back into the
        database, and that one commit pays milliseconds for it. A long-lived process that
        calls ``checkpoint()`` in the background (the executor does) defers them instead.
        """
        async with self._lock:
            with _translated():
                await self._conn.execute_fetchall(f"PRAGMA wal_autocheckpoint = {0 if deferred else 1000}")

    async def checkpoint(self) -> None:
        """Copy committed WAL pages back into the database without blocking any reader or
        writer (``PASSIVE``)."""
        async with self._lock:
            with _translated():
                # Its result row is read: aiosqlite's thread holds the last cursor until the
                # next statement, and a checkpoint left unfinished makes the COMMIT of a
                # ``write_blocking`` that follows at once fail ("SQL statements in progress").
                await self._conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")

    async def close(self) -> None:
        await self._conn.close()


def _database_writable(path: Path) -> bool:
    """Takes and releases the write lock: proves the file opens read-write and no one
    holds the lock for longer than a probe can wait. Never creates the file."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=1.0)
    except (sqlite3.Error, OSError):
        return False
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _prepare_file(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # The queue holds the exact calls it will execute: owner-only from the start.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise ConfigError(f"cannot create the database at {path}: {exc.strerror}") from exc


def _split(script: str) -> list[str]:
    """Statements of a migration script (they contain no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
