"""The database's transaction discipline under cancellation, on both backends."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest
from storage_fixtures import Backend

from gateway.db import BlockingConnection, Database
from gateway.errors import DatabaseError, DuplicateKey
from gateway.storage.sqlite import SqliteDatabase


async def test_a_writer_cancelled_while_its_begin_is_queued_leaves_no_transaction_open(
    backend: Backend,
) -> None:
    # The executor cancels its heartbeat task whenever an execution ends; a heartbeat caught
    # at its BEGIN used to leave SQLite's shared connection inside a transaction.
    db = await Database.open(backend.target)
    try:

        async def writer() -> None:
            async with db.write() as conn:
                await conn.execute("SELECT 1")

        task = asyncio.create_task(writer())
        await asyncio.sleep(0)  # the writer holds the lock and waits for its BEGIN
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.write() as conn:
            assert await conn.fetchone("SELECT count(*) FROM actions") == (0,)
        if isinstance(db, SqliteDatabase):
            assert not db.in_transaction
    finally:
        await db.close()


async def test_a_blocking_write_commits_its_statements_or_none_of_them(tmp_path: Path) -> None:
    # The audit append's one trip: BEGIN IMMEDIATE, the work and COMMIT on the driver's
    # thread; a failure anywhere rolls everything back and the connection stays usable.
    db = await Database.open(tmp_path / "gateway.db")
    try:
        assert db.blocking_writes

        def insert(conn: BlockingConnection, action_id: str, then_fail: bool) -> int:
            conn.execute(
                "INSERT INTO audit (seq, time, kind, action_id, target, reasons, detail, prev_hash, hash, "
                "hash_format) VALUES (?, 't', 'decision', ?, '{}', '[]', '{}', 'p', 'h', 2)",
                [int(action_id), action_id],
            )
            if then_fail:
                conn.execute("INSERT INTO no_such_table VALUES (1)")
            row = conn.fetchone("SELECT count(*) FROM audit")
            assert row is not None
            return int(row[0])

        assert await db.write_blocking(functools.partial(insert, action_id="1", then_fail=False)) == 1
        with pytest.raises(DatabaseError, match="no such table"):
            await db.write_blocking(functools.partial(insert, action_id="2", then_fail=True))
        with pytest.raises(DuplicateKey):
            await db.write_blocking(functools.partial(insert, action_id="1", then_fail=False))
        assert isinstance(db, SqliteDatabase)
        assert not db.in_transaction
        async with db.read() as conn:
            assert await conn.fetchall("SELECT action_id FROM audit") == [("1",)]
    finally:
        await db.close()


async def test_postgres_has_no_blocking_writes(backend: Backend) -> None:
    db = await Database.open(backend.target)
    try:
        if backend.name == "sqlite":
            assert db.blocking_writes
        else:
            assert not db.blocking_writes
            with pytest.raises(NotImplementedError):
                await db.write_blocking(lambda conn: None)
    finally:
        await db.close()


async def test_a_blocking_write_right_after_a_checkpoint_commits(tmp_path: Path) -> None:
    # aiosqlite's thread keeps the previous statement's cursor until the next one returns;
    # an unfinished checkpoint there used to fail the COMMIT of the audit append.
    db = await Database.open(tmp_path / "gateway.db")
    try:
        for _ in range(3):
            await db.checkpoint()
            await db.write_blocking(lambda conn: conn.execute("DELETE FROM audit"))
            await db.defer_checkpoints()
            await db.write_blocking(lambda conn: conn.fetchone("SELECT count(*) FROM audit"))
    finally:
        await db.close()
