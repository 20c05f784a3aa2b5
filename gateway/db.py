"""The gateway's SQLite database: one aiosqlite connection per process, WAL, versioned schema.

The approval queue and the audit log live in the same file so that a state transition
and its audit record commit together. Several processes share it (the gateway and the
CLI): every write runs in ``BEGIN IMMEDIATE``, which takes SQLite's single write lock up
front, so writers queue behind each other (``busy_timeout``) instead of failing halfway
through a transaction. Inside one process an ``asyncio.Lock`` keeps coroutines from
interleaving statements on the shared connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiosqlite

from gateway.errors import ConfigError

__all__ = ["SCHEMA_VERSION", "Database"]

# Each entry migrates from version i to i + 1; never edit a released entry, append one.
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE actions (
        id              TEXT PRIMARY KEY,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'executing',
                            'succeeded', 'failed', 'denied', 'expired', 'cancelled', 'interrupted')),
        tool            TEXT NOT NULL,
        call_json       TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        decision_json   TEXT NOT NULL,
        bundle_revision TEXT,
        decision_id     TEXT,
        requester       TEXT NOT NULL,
        requester_json  TEXT NOT NULL,
        target_json     TEXT NOT NULL,
        min_approvals   INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        expires_at      TEXT NOT NULL,
        last_decision_json TEXT,
        claimed_by      TEXT,
        result_json     TEXT,
        error           TEXT
    );
    -- `queue list [--state S]`: newest first, optionally by state
    CREATE INDEX actions_by_state ON actions (state, created_at);
    CREATE INDEX actions_by_created ON actions (created_at);
    -- the executor's sweep: live rows past their expiry
    CREATE INDEX actions_by_expiry ON actions (state, expires_at);

    CREATE TABLE approvals (
        action_id   TEXT NOT NULL REFERENCES actions (id),
        subject     TEXT NOT NULL,
        groups_json TEXT NOT NULL,
        approved_at TEXT NOT NULL,
        reason      TEXT,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (action_id, subject)
    ) WITHOUT ROWID;

    CREATE TABLE audit (
        seq             INTEGER PRIMARY KEY,
        time            TEXT NOT NULL,
        kind            TEXT NOT NULL,
        action_id       TEXT,
        tool            TEXT,
        subject         TEXT,
        transport       TEXT,
        target          TEXT NOT NULL,
        outcome         TEXT,
        reasons         TEXT NOT NULL,
        bundle_revision TEXT,
        decision_id     TEXT,
        fingerprint     TEXT,
        detail          TEXT NOT NULL,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL
    );
    CREATE INDEX audit_by_action ON audit (action_id);
    """,
    # 2: executions renew a lease, so a claim by a process on another host (a container
    # sharing the volume) can be told dead without a pid to look at.
    """
    ALTER TABLE actions ADD COLUMN heartbeat_at TEXT;
    """,
    # 3: who denied a denied action ('policy' on re-evaluation, or 'approver'), and the
    # proofs of an approval: the statement approved (canonical JSON), the approver's SSH
    # signature over it, and the gateway's attestation that it came through the API.
    """
    ALTER TABLE actions ADD COLUMN denied_by TEXT;
    ALTER TABLE approvals ADD COLUMN statement TEXT;
    ALTER TABLE approvals ADD COLUMN signature TEXT;
    ALTER TABLE approvals ADD COLUMN attestation TEXT;
    """,
    # 4: audit rows say how their hash was computed (gateway.audit): rows already written
    # keep format 1 and verify as they were; new rows use RFC 8785 canonical JSON.
    """
    ALTER TABLE audit ADD COLUMN hash_format INTEGER NOT NULL DEFAULT 1;
    """,
)

SCHEMA_VERSION: Final[int] = len(_MIGRATIONS)


class Database:
    """An open gateway database. Use ``await Database.open(path)``; close with ``close()``
    (or ``async with``)."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path, *, busy_timeout_seconds: float = 10.0) -> Database:
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
        except sqlite3.Error as exc:
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
            row = await (await conn.execute("PRAGMA user_version")).fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"the database at {self.path} has schema version {current}, newer than this "
                    f"gateway's {SCHEMA_VERSION}: upgrade the gateway"
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in _split(_MIGRATIONS[version]):
                    await conn.execute(statement)
            if current != SCHEMA_VERSION:
                await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed when the block ends,
        rolled back if it raises."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                await self._rollback()
                raise
            await self._conn.execute("COMMIT")

    async def _rollback(self) -> None:
        # A writer cancelled while its BEGIN is queued in aiosqlite's thread still gets that
        # BEGIN run later; without this ROLLBACK (queued behind it, and shielded from a second
        # cancellation) the connection stays inside a transaction and the next writer fails
        # with "cannot start a transaction within a transaction".
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction was active
            await asyncio.shield(self._conn.execute("ROLLBACK"))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for reads, outside any transaction: each statement sees its own
        consistent snapshot (readers write queries that need one snapshot as one statement)."""
        async with self._lock:
            yield self._conn

    async def defer_checkpoints(self, deferred: bool = True) -> None:
        """Stop (or resume) SQLite's automatic WAL checkpoints on this connection.

        By default the commit that grows the WAL past 1000 pages copies it back into the
        database, and that one commit pays milliseconds for it. A long-lived process that
        calls ``checkpoint()`` in the background (the executor does) defers them instead.
        """
        async with self._lock:
            await self._conn.execute(f"PRAGMA wal_autocheckpoint = {0 if deferred else 1000}")

    async def checkpoint(self) -> None:
        """Copy committed WAL pages back into the database without blocking any reader or
        writer (``PASSIVE``)."""
        async with self._lock:
            await self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


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
