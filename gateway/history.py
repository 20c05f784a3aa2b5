"""Recent activity per principal and per MCP session, for runaway protection in policy.

An agent in a loop can make hundreds of calls a minute, each allowed on its own. Before
policy judges a call, the pipeline asks ``ActivityLog.history`` how many calls the gateway
decided for the same principal (across every session, process and replica) and for the
same MCP session, over the last minute and the last hour, by effect; the counts go into
the proposed action as ``input.history`` (``gateway.contracts.History``), where the
``runaway_protection`` rule turns a burst into needs_approval and a larger one into deny.
After the decision the call is ``record``-ed: every decided call counts, whatever the
outcome, so an agent that keeps hammering stays held until it pauses.

Where the counts live: the ``activity`` table of the gateway database, one row per decided
call (time in epoch milliseconds, subject, session, effect), so they hold across restarts,
processes and replicas. Rows are written in batches (group commit, every
``history_flush_seconds``) instead of one transaction per call; the counts include this
process's rows still waiting for their batch, so a process always sees its own calls at
once and other processes see them within one flush interval. A crash loses at most that
interval's rows. Rows older than two hours are pruned.

When the counts cannot be read in time (``history_read_timeout_seconds``: the database is
unavailable, locked or slow) ``history`` raises ``HistoryUnavailable``: the pipeline then
refuses calls that change something and lets reads go on without ``input.history``.
A batch that cannot be written stays queued (bounded) and is retried with the next one.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.contracts import Activity, Effect, History
from gateway.db import Database
from gateway.errors import HistoryUnavailable
from gateway.metrics import METRICS, Metrics

__all__ = ["MINUTE_MS", "ActivityLog"]

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
_HOUR_MS = 60 * MINUTE_MS
_KEEP_MS = 2 * _HOUR_MS
_PRUNE_EVERY_MS = MINUTE_MS
_MAX_PENDING = 50_000

# One range scan per scope over the covering index: (scope, effect, last hour, last minute).
_COUNT = (
    "SELECT {scope}, effect, count(*), sum(CASE WHEN at_ms >= ? THEN 1 ELSE 0 END) "
    "FROM activity WHERE {column} = ? AND at_ms >= ? GROUP BY effect"
)
_PRINCIPAL_COUNTS = _COUNT.format(scope=0, column="subject")
_SESSION_COUNTS = _COUNT.format(scope=1, column="session")
_INSERT = "INSERT INTO activity (at_ms, subject, session, effect) VALUES "
# Rows per INSERT: 4 parameters each stays under SQLite's oldest limit of 999.
_CHUNK = 200


@dataclass(frozen=True)
class _Row:
    at_ms: int
    subject: str
    session: str | None
    effect: Effect


class _Tally:
    """Counts by effect over the last hour and the last minute, for one scope."""

    def __init__(self) -> None:
        self.hour: dict[str, int] = {"read": 0, "write": 0, "delete": 0}
        self.minute: dict[str, int] = {"read": 0, "write": 0, "delete": 0}

    def add(self, effect: str, hour: int, minute: int) -> None:
        if effect in self.hour:
            self.hour[effect] += hour
            self.minute[effect] += minute

    def activity(self) -> Activity:
        hour, minute = self.hour, self.minute
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
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._read_timeout = read_timeout
        self._clock = clock
        self._metrics = metrics or METRICS
        self._pending: list[_Row] = []
        # Held while a batch moves from pending to the table and while counts are read,
        # so no count sees a row twice (committed and still pending) or not at all.
        self._guard = asyncio.Lock()
        self._pruned_at = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def history(self, subject: str, session: str | None) -> History:
        """The principal's and the session's counts before this call. Raises
        ``HistoryUnavailable`` when they cannot be read within the read timeout."""
        try:
            async with asyncio.timeout(self._read_timeout), self._guard:
                now = self._now_ms()
                rows = await self._query(subject, session, now)
                principal, in_session = _Tally(), _Tally()
                for scope, effect, hour, minute in rows:
                    (in_session if scope else principal).add(str(effect), int(hour), int(minute or 0))
                for row in self._pending:
                    if row.at_ms >= now - _HOUR_MS:
                        recent = int(row.at_ms >= now - MINUTE_MS)
                        if row.subject == subject:
                            principal.add(row.effect, 1, recent)
                        if session is not None and row.session == session:
                            in_session.add(row.effect, 1, recent)
        except (TimeoutError, sqlite3.Error) as exc:
            self._metrics.record_history_failure("read")
            raise HistoryUnavailable(
                f"recent activity could not be read ({type(exc).__name__}): "
                "calls that change something are refused until it can"
            ) from exc
        counts = principal.activity()
        return History(**counts.model_dump(), session=in_session.activity() if session is not None else None)

    async def _query(self, subject: str, session: str | None, now: int) -> Sequence[tuple[Any, ...]]:
        params: list[object] = [now - MINUTE_MS, subject, now - _HOUR_MS]
        sql = _PRINCIPAL_COUNTS
        if session is not None:
            sql = f"{sql} UNION ALL {_SESSION_COUNTS}"
            params += [now - MINUTE_MS, session, now - _HOUR_MS]
        async with self._db.read() as conn:
            return [tuple(row) for row in await conn.execute_fetchall(sql, params)]

    def record(self, subject: str, session: str | None, effect: Effect) -> None:
        """Count one decided call now; it reaches the table with the next batch."""
        self._pending.append(_Row(self._now_ms(), subject, session, effect))
        if len(self._pending) > _MAX_PENDING:
            # The database has been unwritable for a long while: keep the newest.
            del self._pending[: len(self._pending) - _MAX_PENDING]

    async def flush(self) -> None:
        """Write the pending rows in one transaction (and prune old ones now and then).
        A batch that fails stays pending for the next flush; never raises."""
        async with self._guard:
            batch, now = list(self._pending), self._now_ms()
            prune = now - self._pruned_at >= _PRUNE_EVERY_MS
            if not batch and not prune:
                return
            try:
                async with self._db.write() as conn:
                    for start in range(0, len(batch), _CHUNK):
                        chunk = batch[start : start + _CHUNK]
                        values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                        params = [v for r in chunk for v in (r.at_ms, r.subject, r.session, r.effect)]
                        await conn.execute(_INSERT + values, params)
                    if prune:
                        await conn.execute("DELETE FROM activity WHERE at_ms < ?", [now - _KEEP_MS])
            except sqlite3.Error as exc:
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
