"""psycopg 3 against asyncpg on the queue's own statements, same server, interleaved rounds.

How the PostgreSQL driver was chosen (docs/deployment.md, "PostgreSQL"). Each round runs
the same operations through both drivers, alternating which goes first; the report gives
p50/p99 per operation and asyncpg's figures as a ratio of psycopg's.

    pip install 'psycopg[binary]' && python -m bench.pg_drivers   # psycopg is not a dependency
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from gateway.local.postgres import PostgresServer

SCHEMA = """
CREATE TABLE actions (
    id text COLLATE "C" PRIMARY KEY, state text COLLATE "C" NOT NULL, tool text NOT NULL,
    call_json text NOT NULL, created_at text COLLATE "C" NOT NULL, expires_at text COLLATE "C" NOT NULL,
    updated_at text NOT NULL);
CREATE INDEX actions_by_state ON actions (state, created_at);
"""
CALL = '{"tool":"k8s_scale","args":{"namespace":"payments","name":"api","replicas":5}}' * 8

Op = Callable[[], Awaitable[Any]]


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def _fill(url: str, rows: int) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
        ids = _ids(rows)
        records = [
            (i, "pending" if n % 10 else "approved", "k8s_scale", CALL, f"2026-01-05T09:00:00.{n:06d}Z",
             "2099-01-01T00:00:00.000000Z", "2026-01-05T09:00:00.000000Z")
            for n, i in enumerate(ids)
        ]  # fmt: skip
        await conn.copy_records_to_table(
            "actions",
            records=records,
            columns=["id", "state", "tool", "call_json", "created_at", "expires_at", "updated_at"],
        )
        await conn.execute("ANALYZE actions")
        return ids
    finally:
        await conn.close()


class _Asyncpg:
    name = "asyncpg"

    async def open(self, url: str) -> None:
        self.conn = await asyncpg.connect(url)

    async def get(self, action_id: str) -> Any:
        return await self.conn.fetch("SELECT id, state, call_json FROM actions WHERE id = $1", action_id)

    async def list_pending(self) -> Any:
        return await self.conn.fetch(
            "SELECT id, state, tool, created_at FROM actions WHERE state = $1 AND expires_at > $2 "
            "ORDER BY created_at DESC LIMIT 50",
            "pending",
            "2026-01-05T10:00:00.000000Z",
        )

    async def transition(self, action_id: str) -> Any:
        async with self.conn.transaction():
            await self.conn.execute("SELECT pg_advisory_xact_lock(42)")
            await self.conn.execute(
                "UPDATE actions SET updated_at = $1 WHERE id = $2 AND state = $3",
                "2026-01-05T09:00:01.000000Z",
                action_id,
                "pending",
            )

    async def close(self) -> None:
        await self.conn.close()


class _Psycopg:
    name = "psycopg"

    async def open(self, url: str) -> None:
        import psycopg

        self.conn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def get(self, action_id: str) -> Any:
        cur = await self.conn.execute("SELECT id, state, call_json FROM actions WHERE id = %s", [action_id])
        return await cur.fetchall()

    async def list_pending(self) -> Any:
        cur = await self.conn.execute(
            "SELECT id, state, tool, created_at FROM actions WHERE state = %s AND expires_at > %s "
            "ORDER BY created_at DESC LIMIT 50",
            ["pending", "2026-01-05T10:00:00.000000Z"],
        )
        return await cur.fetchall()

    async def transition(self, action_id: str) -> Any:
        async with self.conn.transaction():
            await self.conn.execute("SELECT pg_advisory_xact_lock(42)")
            await self.conn.execute(
                "UPDATE actions SET updated_at = %s WHERE id = %s AND state = %s",
                ["2026-01-05T09:00:01.000000Z", action_id, "pending"],
            )

    async def close(self) -> None:
        await self.conn.close()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(rows: int, rounds: int, per_round: int) -> None:
    with PostgresServer() as server:
        url = server.url()
        ids = await _fill(url, rows)
        drivers: list[Any] = [_Asyncpg(), _Psycopg()]
        for d in drivers:
            await d.open(url)
        timings: dict[tuple[str, str], list[float]] = {}
        ops: dict[str, Callable[[Any, int], Op]] = {
            "get by id": lambda d, n: lambda: d.get(ids[n % len(ids)]),
            "list 50 pending": lambda d, n: lambda: d.list_pending(),
            "guarded update in tx": lambda d, n: lambda: d.transition(ids[(n * 7) % len(ids)]),
        }
        for r in range(rounds):
            order = drivers if r % 2 == 0 else list(reversed(drivers))
            for d in order:
                for op_name, make in ops.items():
                    for n in range(per_round):
                        op = make(d, r * per_round + n)
                        start = time.perf_counter()
                        await op()
                        timings.setdefault((op_name, d.name), []).append(time.perf_counter() - start)
        for d in drivers:
            await d.close()
    print(f"PostgreSQL drivers, {rows} rows, {rounds} interleaved rounds x {per_round} ops")
    print(f"{'operation':<22} {'driver':<8} {'p50 ms':>8} {'p99 ms':>8} {'ops/s':>8}")
    for op_name in ops:
        base = timings[(op_name, "psycopg")]
        for name in ("psycopg", "asyncpg"):
            s = timings[(op_name, name)]
            print(f"{op_name:<22} {name:<8} {_pct(s, 0.5):8.3f} {_pct(s, 0.99):8.3f} {len(s) / sum(s):8.0f}")
        fast = timings[(op_name, "asyncpg")]
        ratio = statistics.median(fast) / statistics.median(base)
        print(f"{'':<22} asyncpg p50 = {ratio:.2f} x psycopg p50")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rounds, args.per_round))
