"""The PostgreSQL backend (asyncpg): several gateway replicas on one database.

- A connection pool per process (``GATEWAY_DATABASE_POOL_SIZE``); transactions at READ
  COMMITTED. Guarded ``UPDATE … WHERE state = ?`` statements take the row's lock, so of
  two replicas racing for one transition the second waits, sees the first's commit and
  changes nothing. A transaction that reads a row and then decides what to write takes
  the row's lock first (``lock_row``: ``SELECT … FOR UPDATE``).
- The audit chain has one head for every replica: ``lock_named("audit")`` is a
  transaction-level advisory lock (``pg_advisory_xact_lock``) taken before the head is
  read, held until the appending transaction commits, so appends are serialised by the
  database and the chain never forks.
- A trigger on ``actions`` (``postgres_schema``) calls ``pg_notify`` for every transition:
  PostgreSQL delivers it at commit, to every replica ``LISTEN``-ing on one dedicated
  connection; ``wait_for_change`` wakes the waiting call at once. If that connection is
  lost, waiters fall back to polling until it is back, and a reconnection wakes them all
  (they may have missed something).
- Opening migrates under an advisory lock (replicas starting together migrate once) and
  refuses, naming which: an unreachable server, refused credentials, a missing database,
  a schema newer than this code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import asyncpg

from gateway.db import Connection, Database, Dialect, describe
from gateway.errors import ConfigError, DatabaseError, DuplicateKey
from gateway.storage.postgres_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["CHANNEL", "DIALECT", "PostgresDatabase"]

log = logging.getLogger(__name__)

DIALECT = Dialect(
    name="postgresql",
    json_list_template="coalesce(json_agg({})::text, '[]')",
    json_tuple_template="json_build_array({})",
    as_json_template="({})::json",
)
CHANNEL: Final[str] = "policy_gateway_actions"  # the schema's trigger notifies on it
# Bounds on what one statement may wait for: a row or advisory lock held by a stuck
# transaction (SQLite's busy_timeout plays this part there), a transaction left open.
_SERVER_SETTINGS: Final[dict[str, str]] = {
    "application_name": "policy-gateway",
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "60s",
}
_COMMAND_TIMEOUT_SECONDS: Final[float] = 30.0
_CLEANUP_SECONDS: Final[float] = 5.0
_LISTEN_RETRY_SECONDS: Final[float] = 2.0
_WATCH_IDLE_SECONDS: Final[float] = 120.0
# TimeoutError is an OSError; InternalClientError is what a connection left mid-operation
# (its query cancelled while the server was gone) raises at its next use.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …`` (quoted text is left alone)."""
    out, n, quoted = [], 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            n += 1
            out.append(f"${n}")
        else:
            out.append(char)
    return "".join(out)


async def _reset(conn: asyncpg.Connection[Any]) -> None:
    """What a connection needs before it goes back to the pool, beyond the rollback of an
    interrupted transaction that asyncpg does first: nothing. The gateway leaves no session
    state behind (transaction-level locks only, no SET, LISTEN on its own connection), and
    asyncpg's default reset (RESET ALL, UNLISTEN *, …) costs a round trip per checkout."""


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    digest = hashlib.sha256(f"policy-gateway:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.PostgresError):
        return f"{exc.sqlstate}: {exc}" if getattr(exc, "sqlstate", None) else str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateKey(f"PostgreSQL: {_reason(exc)}") from exc
    except _DRIVER_ERRORS as exc:
        raise DatabaseError(f"PostgreSQL: {_reason(exc)}") from exc


class _PgConnection(Connection):
    def __init__(self, conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with _translated():
            status = await self._conn.execute(numbered(sql), *params)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with _translated():
            return [tuple(record) for record in await self._conn.fetch(numbered(sql), *params)]

    async def run_script(self, script: str) -> None:
        """Several statements at once (a migration), without parameters."""
        with _translated():
            await self._conn.execute(script)

    async def lock_row(self, table: str, key: str) -> None:
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        await self.fetchall(f"SELECT 1 FROM {table} WHERE id = ? FOR UPDATE", [key])  # noqa: S608 - checked

    async def lock_named(self, name: str) -> None:
        await self.fetchall("SELECT pg_advisory_xact_lock(?)", [_lock_key(name)])


@dataclass
class _Watch:
    """Interest in one key's changes; kept for a while after each wait, so a change that
    lands between two waits (while the waiter re-reads) is not missed."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    used: float = field(default_factory=time.monotonic)
    waiting: int = 0


class PostgresDatabase(Database):
    """``Database`` over a PostgreSQL connection pool."""

    dialect = DIALECT

    def __init__(self, pool: asyncpg.Pool, url: str, *, connect_timeout_seconds: float) -> None:
        self._pool = pool
        self._url = url
        self._connect_timeout = connect_timeout_seconds
        self.location = describe(url)
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()
        self._listen_retry_at = 0.0
        self._watches: dict[str, _Watch] = {}
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        require_schema: bool = False,
        pool_size: int = 10,
        connect_timeout_seconds: float = 10.0,
    ) -> PostgresDatabase:
        """Connect a pool to ``url`` and migrate the schema. Raises ``ConfigError`` naming
        why the database cannot be used."""
        location = describe(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=connect_timeout_seconds,
                command_timeout=_COMMAND_TIMEOUT_SECONDS,
                server_settings=_SERVER_SETTINGS,
                reset=_reset,
            )
        except (*_DRIVER_ERRORS, ValueError) as exc:
            raise ConfigError(_refusal(url, exc, connect_timeout_seconds)) from exc
        db = cls(pool, url, connect_timeout_seconds=connect_timeout_seconds)
        try:
            await db._migrate(require_schema=require_schema)
        except DatabaseError as exc:
            await db.close()
            raise ConfigError(f"cannot set up the gateway's tables in {location}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        return db

    async def _migrate(self, *, require_schema: bool) -> None:
        async with self._transaction() as conn:
            await conn.lock_named("schema")
            row = await conn.fetchone("SELECT to_regclass('gateway_schema') IS NOT NULL")
            current = 0
            if row and row[0]:
                found = await conn.fetchone("SELECT version FROM gateway_schema")
                current = int(found[0]) if found else 0
            if current == 0 and require_schema:
                raise ConfigError(
                    f"the database {self.location} holds no gateway tables: is GATEWAY_DATABASE_URL the "
                    "one the gateway uses? (the gateway creates them when it starts)"
                )
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"the database {self.location} has schema version {current}, newer than this "
                    f"gateway's {SCHEMA_VERSION}: upgrade the gateway"
                )
            if current == SCHEMA_VERSION:
                return
            if not (row and row[0]):
                await conn.run_script("CREATE TABLE gateway_schema (version integer NOT NULL)")
            for version in range(current, SCHEMA_VERSION):
                await conn.run_script(MIGRATIONS[version])
            await conn.execute("DELETE FROM gateway_schema")
            await conn.execute("INSERT INTO gateway_schema (version) VALUES (?)", [SCHEMA_VERSION])
            log.info("database %s migrated from schema %d to %d", self.location, current, SCHEMA_VERSION)

    # -- connections ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _acquired(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
        with _translated():
            conn = await self._pool.acquire(timeout=self._connect_timeout)
        try:
            yield conn
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_SECONDS):
                await self._pool.release(conn)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_PgConnection]:
        async with self._acquired() as conn:
            tx = conn.transaction()
            with _translated():
                await tx.start()
            try:
                yield _PgConnection(conn)
            except BaseException:
                # The connection may be gone with the server: then there is nothing to undo.
                rolled_back = False
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(_CLEANUP_SECONDS),
                    contextlib.suppress(*_DRIVER_ERRORS),
                ):
                    await tx.rollback()
                    rolled_back = True
                if not rolled_back:
                    # A rollback cut short leaves the connection inside an operation: closed, the
                    # pool replaces it instead of handing it out again.
                    conn.terminate()
                raise
            with _translated():
                await tx.commit()

    def write(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """One READ COMMITTED transaction on a pooled connection."""
        return self._transaction()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A pooled connection in autocommit: each statement sees what was committed when it started."""
        async with self._acquired() as conn:
            yield _PgConnection(conn)

    async def writable(self) -> bool:
        try:
            with anyio.fail_after(2.0):
                async with self._acquired() as conn:
                    return bool(await conn.fetchval("SELECT NOT pg_is_in_recovery()"))
        except (DatabaseError, TimeoutError, *_DRIVER_ERRORS):
            return False

    async def defer_checkpoints(self, deferred: bool = True) -> None:
        pass  # the server checkpoints its write-ahead log itself

    async def checkpoint(self) -> None:
        pass

    # -- notifications -------------------------------------------------------------

    def watch(self, key: str) -> None:
        self._watches.setdefault(key, _Watch())

    async def wait_for_change(self, key: str, seconds: float) -> bool:
        watch = self._watches.setdefault(key, _Watch())
        watch.used = time.monotonic()
        watch.waiting += 1
        try:
            if not await self._listening():
                await anyio.sleep(max(0.0, min(seconds, _LISTEN_RETRY_SECONDS)))
                return False
            if not watch.event.is_set():
                with anyio.move_on_after(max(0.0, seconds)):
                    await watch.event.wait()
            changed = watch.event.is_set()
            watch.event.clear()
            return changed
        finally:
            watch.waiting -= 1
            watch.used = time.monotonic()
            self._forget_idle()

    async def _listening(self) -> bool:
        """The LISTEN connection, (re)connected when needed; false while it cannot be."""
        if self._listener is not None and not self._listener.is_closed():
            return True
        if self._closed or time.monotonic() < self._listen_retry_at:
            return False
        async with self._listener_lock:
            if self._listener is not None and not self._listener.is_closed():
                return True
            try:
                conn = await asyncpg.connect(
                    self._url, timeout=self._connect_timeout, server_settings=_SERVER_SETTINGS
                )
                await conn.add_listener(CHANNEL, self._on_notification)
            except (*_DRIVER_ERRORS, ValueError) as exc:
                log.warning(
                    "cannot LISTEN on %s (%s); parked calls poll meanwhile", self.location, _reason(exc)
                )
                self._listen_retry_at = time.monotonic() + _LISTEN_RETRY_SECONDS
                return False
            conn.add_termination_listener(self._on_listener_lost)
            self._listener = conn
        # Whatever happened while nobody listened was not heard: let every waiter re-read.
        for watch in self._watches.values():
            watch.event.set()
        return True

    def _on_notification(self, conn: object, pid: int, channel: str, payload: object) -> None:
        watch = self._watches.get(str(payload))
        if watch is not None:
            watch.event.set()

    def _on_listener_lost(self, conn: object) -> None:
        self._listener = None

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - _WATCH_IDLE_SECONDS
        for key in [k for k, w in self._watches.items() if not w.waiting and w.used < cutoff]:
            del self._watches[key]

    async def close(self) -> None:
        self._closed = True
        listener, self._listener = self._listener, None
        with anyio.CancelScope(shield=True):
            if listener is not None:
                with contextlib.suppress(*_DRIVER_ERRORS), anyio.move_on_after(_CLEANUP_SECONDS):
                    await listener.close()
                if not listener.is_closed():
                    listener.terminate()
            with anyio.move_on_after(_CLEANUP_SECONDS) as scope:
                with contextlib.suppress(*_DRIVER_ERRORS):
                    await self._pool.close()
            if scope.cancelled_caught:
                self._pool.terminate()


def _refusal(url: str, exc: BaseException, timeout: float) -> str:
    """Why the gateway cannot use the database at ``url``, in words that say what to fix."""
    location = describe(url)
    user = urlsplit(url).username or "(default user)"
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"PostgreSQL at {location} refused the credentials of user {user!r} ({exc}): check the "
            "user and password in GATEWAY_DATABASE_URL"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return (
            f"PostgreSQL at {location} has no such database ({exc}): create it, or fix GATEWAY_DATABASE_URL"
        )
    if isinstance(exc, TimeoutError):
        return f"PostgreSQL at {location} did not answer within {timeout:g}s: is the server reachable?"
    if isinstance(exc, asyncpg.PostgresError):
        return f"PostgreSQL at {location} refused the connection: {_reason(exc)}"
    if isinstance(exc, OSError):
        return f"cannot reach PostgreSQL at {location}: {_reason(exc)}"
    return f"GATEWAY_DATABASE_URL ({location}) cannot be used: {type(exc).__name__}"
