"""The database wrapper's transaction discipline under cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.db import Database


async def test_a_writer_cancelled_while_its_begin_is_queued_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    # The executor cancels its heartbeat task whenever an execution ends; a heartbeat caught
    # at its BEGIN used to leave the shared connection inside a transaction.
    db = await Database.open(tmp_path / "gateway.db")
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
            cursor = await conn.execute("SELECT count(*) FROM actions")
            assert await cursor.fetchone() == (0,)
        async with db.read() as conn:
            assert not conn.in_transaction
    finally:
        await db.close()
