"""The two database backends as fixtures: every queue, audit and executor suite runs on both.

``backend`` is parametrised ``sqlite`` / ``postgres``. SQLite is a file in the test's
``tmp_path``; PostgreSQL is a fresh database on one real server per test session
(``postgres_server``: Debian's ``initdb``/``postgres`` on a free port in a temp dir, stopped by
pid; ``gateway.local.postgres``), dropped when the test ends. A test reaches the database
through ``backend.target`` (what ``QueueStore.open`` takes), ``backend.settings(...)`` and
``backend.env()`` (a gateway or CLI configured for it), and writes behind the gateway's back
with ``backend.execute`` (``?`` placeholders on both), as an attacker with database access
would.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.db import Database
from gateway.local.postgres import PostgresServer
from gateway.settings import Settings
from gateway.storage.postgres import numbered

__all__ = ["BACKENDS", "Backend", "backend", "db", "make_backend", "postgres_backend", "postgres_server"]

# The PostgreSQL variants start a server: integration tests, wherever they live.
BACKENDS = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration])]
_names = itertools.count(1)


@dataclass
class Backend:
    """One test's database, on one backend."""

    name: str
    workdir: Path
    url: str | None = None
    server: PostgresServer | None = None

    @property
    def target(self) -> Path | str:
        return self.url if self.url is not None else self.workdir / "gateway.db"

    @property
    def db_path(self) -> Path:
        """The SQLite file (on PostgreSQL: where nothing is; files beside it still go there)."""
        return self.workdir / "gateway.db"

    def fields(self) -> dict[str, Any]:
        """``Settings`` fields that put a gateway on this database. On PostgreSQL the keys
        replicas must share are named explicitly, as a deployment must (``require_shared_keys``)."""
        fields: dict[str, Any] = {"db_path": self.db_path}
        if self.url is not None:
            fields |= {
                "database_url": self.url,
                "queue_keys_file": self.workdir / "queue.keys",
                "attestation_key_file": self.workdir / "attestation.key",
            }
        return fields

    def settings(self, **extra: Any) -> Settings:
        return Settings(**(self.fields() | extra))

    def env(self) -> dict[str, str]:
        """The same as ``GATEWAY_*`` variables, for a gateway or CLI process."""
        env = {"GATEWAY_DB_PATH": str(self.db_path)}
        if self.url is not None:
            env |= {
                "GATEWAY_DATABASE_URL": self.url,
                "GATEWAY_QUEUE_KEYS_FILE": str(self.workdir / "queue.keys"),
                "GATEWAY_ATTESTATION_KEY_FILE": str(self.workdir / "attestation.key"),
            }
        return env

    def environ(self, **extra: str) -> dict[str, str]:
        """``os.environ`` without any database setting of the caller's, plus ``env()``."""
        base = {k: v for k, v in os.environ.items() if k not in {"GATEWAY_DATABASE_URL", "GATEWAY_DB_PATH"}}
        return base | self.env() | extra

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement straight on the database (``?`` placeholders); its rows."""
        if self.url is None:
            return await asyncio.to_thread(self.execute_sync, sql, params)
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(r) for r in await conn.fetch(numbered(sql), *params)]
        finally:
            await conn.close()

    def execute_sync(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``execute`` from synchronous code (no event loop running in this thread)."""
        if self.url is not None:
            return asyncio.run(self.execute(sql, params))
        with sqlite3.connect(self.db_path) as conn:
            return [tuple(r) for r in conn.execute(sql, list(params)).fetchall()]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session, started on first use, stopped by pid at the end."""
    with PostgresServer() as server:
        yield server


def make_backend(request: pytest.FixtureRequest, name: str, workdir: Path) -> Iterator[Backend]:
    """A fresh database on backend ``name``; dropped afterwards (PostgreSQL)."""
    if name == "sqlite":
        yield Backend("sqlite", workdir)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database = f"test_{os.getpid()}_{next(_names)}"
    url = server.create_database(database)
    try:
        yield Backend("postgres", workdir, url=url, server=server)
    finally:
        server.drop_database(database)


@pytest.fixture
def postgres_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh PostgreSQL database, for what only PostgreSQL does."""
    yield from make_backend(request, "postgres", tmp_path)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The test's database, once on SQLite and once on PostgreSQL."""
    yield from make_backend(request, request.param, tmp_path)


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    """The database of ``backend``, opened (migrated) and closed after the test."""
    database = await Database.open(backend.target)
    try:
        yield database
    finally:
        await database.close()
