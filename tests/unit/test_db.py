"""The database's transaction discipline under cancellation, on both backends."""

from __future__ import annotations

import asyncio

import pytest
from storage_fixtures import Backend

from gateway.db import Database
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
