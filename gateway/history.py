"""Recent activity per principal and per MCP session, for runaway protection in policy.

An agent in a loop can make hundreds of calls a minute, each allowed on its own. Before
policy judges a call, the pipeline asks ``ActivityLog.history`` how many calls the gateway
decided for the same principal (across every session, process and replica) and for the
same MCP session, over the last minute and the last hour, by effect; the counts go into
the proposed action as ``input.history`` (``gateway.contracts.History``), where the
``runaway_protection`` rule turns a burst into needs_approval and a larger one into deny.
After the decision the call is ``record``-ed: every decided call counts, whatever the
outcome, so an agent that keeps hammering stays held until it pauses.

Where the counts live: the ``activity`` table of the gateway database (SQLite or
PostgreSQL, through ``gateway.db``), so they hold across restarts, processes and
replicas. Each scope (``p:<subject>``, ``s:<session>``) has counters by effect in
10-second buckets, which make up the last minute, and 1-minute buckets, which make up
the last hour: a count reads at most ~70 rows per scope, however busy the principal. The
windows slide in those steps and always cover at least the whole minute or hour (up to
one bucket more). Increments are written in batches (group commit, every
``history_flush_seconds``, one upsert per bucket) instead of one transaction per call;
the counts include this process's calls still waiting for their batch, so a process
sees its own calls at once and other processes see them within one flush interval. A
crash loses at most that interval's calls. Buckets older than two hours are pruned.

For reads (``history(..., reuse=True)``), what was read from the table is reused for
``reuse_seconds`` (the gateway passes the flush interval) and forgotten at every batch:
until this process writes its own calls, the table holds nothing of its own that the
pending calls do not already add, so the stored counts plus the pending calls stay exact
for this process's calls; another process's calls show up within one flush interval of
theirs plus one of ours, instead of a read of the table (and a wait for the database
connection) on every read. A call that changes something always reads the table: its
counts are as fresh as before, and a table that cannot be read refuses it at once.

When the counts cannot be read in time (``history_read_timeout_seconds``: the database is
unavailable, locked or slow) ``history`` raises ``HistoryUnavailable``: the pipeline then
refuses calls that change something and lets reads go on without ``input.history``.
A batch that cannot be written stays queued (bounded) and is retried with the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.contracts import Activity, Effect, History
from gateway.db import Database
from gateway.errors import DatabaseError, HistoryUnavailable
from gateway.metrics import METRICS, Metrics

__all__ = ["ActivityLog"]

log = logging.getLogger(__name__)

# (bucket width in seconds, window in seconds): the minute from 10-second buckets, the
# hour from 1-minute buckets.
_MINUTE = (10, 60)
_HOUR = (60, 3600)
_KEEP_SECONDS = 2 * 3600
_PRUNE_EVERY_SECONDS = 60
_MAX_PENDING = 50_000
_EFFECTS: tuple[Effect, ...] = ("read", "write", "delete")

_SELECT = (
    "SELECT scope, width, sum(reads), sum(writes), sum(deletes) FROM activity "
    "WHERE scope = ? AND width = ? AND bucket >= ? GROUP BY scope, width"
)
_UPSERT = (
    "INSERT INTO activity (scope, width, bucket, reads, writes, deletes) VALUES {values} "
    "ON CONFLICT (scope, width, bucket) DO UPDATE SET reads = activity.reads + excluded.reads, "
    "writes = activity.writes + excluded.writes, deletes = activity.deletes + excluded.deletes"
)
# Buckets per INSERT: 6 parameters each stays under SQLite's oldest limit of 999.
_CHUNK = 150


# (scope, (width, window)) -> counts by effect
_Counts = dict[tuple[str, Any], Counter[str]]


@dataclass(frozen=True)
class _Call:
    at: float
    scopes: tuple[str, ...]
    effect: Effect


def _scopes(subject: str, session: str | None) -> tuple[str, ...]:
    return (f"p:{subject}",) if session is None else (f"p:{subject}", f"s:{session}")


def _start(now: float, width: int, window: int) -> int:
    """The first bucket of a window ending now: the one holding ``now - window``."""
    return int((now - window) // width * width)


def _activity(minute: Counter[str], hour: Counter[str]) -> Activity:
    return Activity(
        calls_last_minute=sum(minute.values()),
        calls_last_hour=sum(hour.values()),
        writes_last_minute=minute["write"] + minute["delete"],
        writes_last_hour=hour["write"] + hour["delete"],
        deletes_last_minute=minute["delete"],
        deletes_last_hour=hour["delete"],
    )


class ActivityLog:
    """Recent activity in ``db``; see the module docstring. ``clock`` returns epoch seconds."""

    def __init__(
        self,
        db: Database,
        *,
        read_timeout: float = 0.5,
        reuse_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._read_timeout = read_timeout
        self._clock = clock
        self._metrics = metrics or METRICS
        self._pending: list[_Call] = []
        self._reuse_seconds = reuse_seconds
        # scopes -> (when read, the stored counts): dropped at every batch.
        self._reused: dict[tuple[str, ...], tuple[float, _Counts]] = {}
        # Held while a batch moves from pending to the table and while counts are read,
        # so no count sees a call twice (written and still pending) or not at all.
        self._guard = asyncio.Lock()
        self._pruned_at = 0.0

    async def history(self, subject: str, session: str | None, *, reuse: bool = False) -> History:
        """The principal's and the session's counts before this call (``reuse``: from a
        read of the table less than ``reuse_seconds`` old, if there is one). Raises
        ``HistoryUnavailable`` when they cannot be read within the read timeout."""
        scopes = _scopes(subject, session)
        try:
            async with asyncio.timeout(self._read_timeout), self._guard:
                now = self._clock()
                counts = await self._stored_or_reused(scopes, now, reuse=reuse)
                self._add_pending(counts, now)
        except (TimeoutError, DatabaseError) as exc:
            self._metrics.record_history_failure("read")
            raise HistoryUnavailable(
                f"recent activity could not be read ({type(exc).__name__}): "
                "calls that change something are refused until it can"
            ) from exc
        principal = _activity(counts[scopes[0], _MINUTE], counts[scopes[0], _HOUR])
        in_session = (
            _activity(counts[scopes[1], _MINUTE], counts[scopes[1], _HOUR]) if session is not None else None
        )
        return History(**principal.model_dump(), session=in_session)

    async def _stored_or_reused(self, scopes: tuple[str, ...], now: float, *, reuse: bool) -> _Counts:
        reused = self._reused.get(scopes) if reuse else None
        if reused is None or not 0 <= now - reused[0] < self._reuse_seconds:
            reused = (now, await self._stored(scopes, now))
            if self._reuse_seconds > 0:
                self._reused[scopes] = reused
        return {key: Counter(counted) for key, counted in reused[1].items()}

    async def _stored(self, scopes: tuple[str, ...], now: float) -> _Counts:
        counts: _Counts = {(s, w): Counter() for s in scopes for w in (_MINUTE, _HOUR)}
        parts, params = [], []
        for scope in scopes:
            for width, window in (_MINUTE, _HOUR):
                parts.append(_SELECT)
                params += [scope, width, _start(now, width, window)]
        async with self._db.read() as conn:
            rows = await conn.fetchall(" UNION ALL ".join(parts), params)
        for scope, width, reads, writes, deletes in rows:
            counted = counts[str(scope), _MINUTE if int(width) == _MINUTE[0] else _HOUR]
            counted.update({"read": int(reads), "write": int(writes), "delete": int(deletes)})
        return counts

    def _add_pending(self, counts: _Counts, now: float) -> None:
        for call in self._pending:
            for width, window in (_MINUTE, _HOUR):
                if call.at >= _start(now, width, window):
                    for scope in call.scopes:
                        if (scope, (width, window)) in counts:
                            counts[scope, (width, window)][call.effect] += 1

    def record(self, subject: str, session: str | None, effect: Effect) -> None:
        """Count one decided call now; it reaches the table with the next batch."""
        self._pending.append(_Call(self._clock(), _scopes(subject, session), effect))
        if len(self._pending) > _MAX_PENDING:
            # The database has been unwritable for a long while: keep the newest.
            del self._pending[: len(self._pending) - _MAX_PENDING]

    async def flush(self) -> None:
        """Write the pending calls as bucket increments in one transaction (and prune old
        buckets now and then). A batch that fails stays pending; never raises."""
        async with self._guard:
            # Whatever happens to the batch, counts are read from the table again after it.
            self._reused.clear()
            batch, now = list(self._pending), self._clock()
            prune = now - self._pruned_at >= _PRUNE_EVERY_SECONDS
            if not batch and not prune:
                return
            rows = _increments(batch)
            try:
                async with self._db.write() as conn:
                    for start in range(0, len(rows), _CHUNK):
                        chunk = rows[start : start + _CHUNK]
                        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                        await conn.execute(_UPSERT.format(values=values), [v for row in chunk for v in row])
                    if prune:
                        await conn.execute(
                            "DELETE FROM activity WHERE bucket < ?", [int(now) - _KEEP_SECONDS]
                        )
            except DatabaseError as exc:
                self._metrics.record_history_failure("write")
                log.warning(
                    "recent activity not written yet (%d calls kept for the next try): %s", len(batch), exc
                )
                return
            del self._pending[: len(batch)]
            if prune:
                self._pruned_at = now

    async def run(self, interval: float) -> None:
        """Flush every ``interval`` seconds until cancelled (then ``flush`` once more)."""
        while True:
            await asyncio.sleep(interval)
            await self.flush()


def _increments(batch: list[_Call]) -> list[tuple[str, int, int, int, int, int]]:
    """The calls of a batch as one row per scope and bucket: (scope, width, bucket,
    reads, writes, deletes)."""
    totals: dict[tuple[str, int, int], Counter[str]] = {}
    for call in batch:
        for width, _ in (_MINUTE, _HOUR):
            bucket = int(call.at // width * width)
            for scope in call.scopes:
                totals.setdefault((scope, width, bucket), Counter())[call.effect] += 1
    return [
        (scope, width, bucket, c["read"], c["write"], c["delete"])
        for (scope, width, bucket), c in totals.items()
    ]
