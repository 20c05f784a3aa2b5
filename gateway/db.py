"""The gateway's database: one interface, two backends.

- **SQLite** (``gateway.storage.sqlite``), the embedded default: one file (``GATEWAY_DB_PATH``),
  one machine; every write transaction takes SQLite's single write lock up front.
- **PostgreSQL** (``gateway.storage.postgres``), selected by
  ``GATEWAY_DATABASE_URL=postgresql://…``: several gateway replicas share one database;
  row locks, an advisory lock for the audit chain, ``LISTEN/NOTIFY`` for parked calls.

The approval queue (``gateway.queue``) and the audit log (``gateway.audit``) are written
once, against this interface:

- ``async with db.write() as conn``: one transaction, committed when the block ends and
  rolled back if it raises; ``async with db.read() as conn``: statements outside any
  transaction, each seeing what was committed when it started.
- Statements use ``?`` placeholders and the SQL both engines speak; where they differ,
  ``db.dialect`` writes the fragment (JSON aggregates).
- ``conn.lock_row(table, id)`` before reading a row that the transaction then changes
  depending on what it read (PostgreSQL: ``SELECT … FOR UPDATE``; SQLite's write lock
  already serialises writers); ``conn.lock_named(name)`` serialises every transaction that
  takes it until they commit (the audit chain's head).
- ``db.write_blocking(work)`` (where ``db.blocking_writes``: SQLite) runs a plain function
  inside one write transaction in a single trip to the driver's thread: begin, its
  statements and the commit without returning to the event loop in between (the audit
  append). Backends without it (PostgreSQL) are written to through ``write()``.
- ``db.wait_for_change(action_id, seconds)`` returns when a transition of that action
  commits (PostgreSQL: the schema's trigger announces it, on any replica) or when
  ``seconds`` pass (SQLite: the caller polls).
- Every driver error is a ``gateway.errors.DatabaseError`` (``DuplicateKey`` for a key
  that exists); opening refuses, with ``ConfigError`` saying which, a database that cannot
  be reached, credentials that are refused, or a schema newer than this code.

Adding a table (or a column): append one migration to each backend's history,
``gateway/storage/sqlite_schema.py`` and ``gateway/storage/postgres_schema.py`` (never edit
a released one). Keep the types plain: text, integer / bigint; JSON and timestamps are
text in both (canonical JSON, fixed-width RFC 3339 UTC), so values compare, sort and hash
the same on both backends. ``tests/storage_fixtures.py`` runs the suites on both.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "BlockingConnection",
    "Connection",
    "Database",
    "Dialect",
    "describe",
    "is_postgres_url",
]

_POSTGRES_SCHEMES = ("postgresql", "postgres")
T = TypeVar("T")


def is_postgres_url(target: Path | str) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in _POSTGRES_SCHEMES


def describe(target: Path | str) -> str:
    """Where the database is, for messages and logs: a path, or the URL without its password."""
    if not is_postgres_url(target):
        return str(target)
    parts = urlsplit(str(target))
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


@dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ between the backends."""

    name: str
    # an aggregate of the rows' values as a JSON array, as text ('[]' when there are none)
    json_list_template: str
    # one JSON array of the given values
    json_tuple_template: str
    # a text column holding JSON, as a JSON value inside json_tuple
    as_json_template: str

    def json_list(self, expr: str) -> str:
        return self.json_list_template.format(expr)

    def json_tuple(self, *exprs: str) -> str:
        return self.json_tuple_template.format(", ".join(exprs))

    def as_json(self, expr: str) -> str:
        return self.as_json_template.format(expr)


class Connection(ABC):
    """One connection inside ``Database.read()`` or ``Database.write()``."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; every row."""

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def lock_row(self, table: str, key: str) -> None:
        """Hold the row ``table.id = key`` until the transaction ends, so what this
        transaction reads of it next is what it will change."""

    @abstractmethod
    async def lock_named(self, name: str) -> None:
        """Serialise every transaction that takes ``name`` until it ends."""


class BlockingConnection(ABC):
    """``Connection``'s statements, blocking: inside ``Database.write_blocking``, on the
    driver's own thread, in the transaction it holds (which already serialises writers)."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run one query; its first row."""


class Database(ABC):
    """An open gateway database: ``await Database.open(path_or_url)``; ``close()`` (or ``async with``)."""

    dialect: Dialect
    location: str
    """``describe()`` of where it is: safe to print."""

    @staticmethod
    async def open(
        target: Path | str,
        *,
        require_schema: bool = False,
        pool_size: int = 10,
        connect_timeout_seconds: float = 10.0,
    ) -> Database:
        """The database at ``target`` (a SQLite path, or a ``postgresql://`` URL), migrated
        to this code's schema. ``require_schema``: refuse one the gateway never set up (the
        CLI: a typo must not look like an empty queue). Raises ``ConfigError``."""
        if is_postgres_url(target):
            from gateway.storage.postgres import PostgresDatabase

            return await PostgresDatabase.connect(
                str(target),
                require_schema=require_schema,
                pool_size=pool_size,
                connect_timeout_seconds=connect_timeout_seconds,
            )
        from gateway.storage.sqlite import SqliteDatabase

        return await SqliteDatabase.connect(Path(target))

    @abstractmethod
    def write(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """One write transaction."""

    blocking_writes: bool = False
    """Whether ``write_blocking`` is available (SQLite)."""

    async def write_blocking(self, work: Callable[[BlockingConnection], T]) -> T:
        """``work``'s statements in one write transaction, begun, run and committed in a
        single trip to the driver's thread (rolled back if ``work`` raises). ``work`` runs
        on that thread: it must not touch the event loop. Raises ``DatabaseError``;
        ``NotImplementedError`` where ``blocking_writes`` is false."""
        raise NotImplementedError(f"{type(self).__name__} has no blocking writes")

    @abstractmethod
    def read(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A connection for reads outside any transaction."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def writable(self) -> bool:
        """Whether a write could commit now (``/readyz``): reachable, not read-only, not
        locked for longer than a probe waits."""

    @abstractmethod
    async def wait_for_change(self, key: str, seconds: float) -> bool:
        """Until a transition of action ``key`` commits (true) or ``seconds`` pass (false)."""

    @abstractmethod
    def watch(self, key: str) -> None:
        """Start collecting changes of ``key`` now, for a ``wait_for_change`` that follows."""

    @abstractmethod
    async def defer_checkpoints(self, deferred: bool = True) -> None:
        """Let a long-lived process fold the write-ahead log back between requests
        (SQLite) instead of inside whichever commit grows it too far."""

    @abstractmethod
    async def checkpoint(self) -> None:
        """See ``defer_checkpoints``."""

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
