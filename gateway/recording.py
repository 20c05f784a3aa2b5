"""Recorded decisions: every decision OPA produced, kept in the gateway's database for
``gateway policy replay`` (reading them back: ``gateway.records``).

The source of truth for replay is this table, not OPA's decision log (docs/changing-policy.md
says why in full): it exists with every transport and deployment, survives OPA restarts, is
queried by time and tool on either backend, knows the call each decision belongs to, and
holds only decisions policy made (a fail-closed deny is the gateway's, not policy's, and is
not recorded). OPA's console decision log stays what it is, for operations.

One row per proposed action judged (a three-document ``k8s_apply`` is three rows of one call),
with the input exactly as OPA received it except for the paths OPA's decision-log mask
removes (``MASKED_PATHS``, equal to ``data.system.log.mask`` in rego/system/log, which a
test checks): the gateway already replaced Secret values by digests, and the mask removes
even those, so the table holds no Secret value in any form. Removed paths are listed in the
row (``erased``), as OPA lists them in its log. The decision, its bundle revision and OPA's
decision id are kept beside it, with the approvals the input carried on re-evaluation.

Cost on the request path: ``observe`` puts a reference on a bounded queue and returns
(no copy, no serialisation, no I/O). ``run`` takes what has queued, lingers briefly so that
rows travel together, serialises them one at a time (yielding to the event loop in between)
and writes each batch as one multi-row INSERT in one transaction. A full queue drops the
decision and counts it (``gateway_recorded_decisions_total{result="dropped"}``): recording
never slows or fails a call. The audit log, written on the request path, stays the
complete record of what was decided; this table is what makes it replayable.

Retention: rows older than ``record_retention_days`` and beyond the newest
``record_max_rows`` are deleted in small chunks, at start and every few minutes. An input
larger than ``record_max_input_bytes`` is recorded without it (replay reports it as skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gateway.audit import format_time
from gateway.contracts import Decision, ProposedAction, canonical_json
from gateway.db import Database
from gateway.errors import DatabaseError
from gateway.metrics import METRICS, Metrics
from gateway.observation import DecisionContext
from gateway.settings import Settings

__all__ = ["COLUMNS", "MASKED_PATHS", "DecisionRecorder", "RecordingLimits", "mask_input"]

log = logging.getLogger(__name__)

MASKED_PATHS: Final[tuple[str, ...]] = (
    "/input/current/data",
    "/input/current/stringData",
    "/input/object/data",
    "/input/object/stringData",
)
"""JSON pointers OPA's decision-log mask removes (rego/system/log/mask.rego), applied to
recorded inputs too."""

COLUMNS: Final[tuple[str, ...]] = (
    "decided_at",
    "call_id",
    "action_id",
    "source",
    "tool",
    "subject",
    "outcome",
    "bundle_revision",
    "decision_id",
    "target_json",
    "input_json",
    "input_bytes",
    "erased_json",
    "decision_json",
)
_INSERT_PREFIX: Final[str] = f"INSERT INTO decision_records ({', '.join(COLUMNS)}) VALUES "  # noqa: S608
_ROW_PLACEHOLDERS: Final[str] = "(" + ", ".join("?" * len(COLUMNS)) + ")"
_PRUNE_CHUNK: Final[int] = 5000


def mask_input(document: dict[str, Any]) -> list[str]:
    """Remove ``MASKED_PATHS`` from an input document in place; the paths that were there."""
    erased = []
    for path in MASKED_PATHS:
        *parents, leaf = path.removeprefix("/input/").split("/")
        node: Any = document
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            del node[leaf]
            erased.append(path)
    return erased


@dataclass(frozen=True)
class RecordingLimits:
    """How much is kept, and how rows travel to the database."""

    retention: timedelta = timedelta(days=30)
    max_rows: int = 2_000_000
    max_input_bytes: int = 256 * 1024
    queue_size: int = 10_000
    batch_size: int = 200
    linger_seconds: float = 0.2
    prune_every_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingLimits:
        return cls(
            retention=timedelta(days=settings.record_retention_days),
            max_rows=settings.record_max_rows,
            max_input_bytes=settings.record_max_input_bytes,
            queue_size=settings.record_queue_size,
        )


@dataclass(frozen=True)
class _Pending:
    action: ProposedAction
    decision: Decision
    context: DecisionContext


def _system_clock() -> datetime:
    return datetime.now(UTC)


class DecisionRecorder:
    """``gateway.observation.DecisionObserver`` that keeps decisions in ``decision_records``.

    ``observe`` queues; ``run`` (a background task) writes; ``stop`` makes ``run`` write what
    is queued and return; ``flush`` writes what is queued now (short-lived processes, tests).
    """

    def __init__(
        self,
        db: Database,
        limits: RecordingLimits | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _system_clock,
    ) -> None:
        self._db = db
        self.limits = limits or RecordingLimits()
        self._metrics = metrics or METRICS
        self._clock = clock
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=self.limits.queue_size)
        self._stopping = asyncio.Event()
        self._dropped_since_warning = 0
        self._last_warning = 0.0

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, *, metrics: Metrics | None = None
    ) -> DecisionRecorder:
        return cls(db, RecordingLimits.from_settings(settings), metrics=metrics)

    # -- the request path ------------------------------------------------------------------

    def observe(self, action: ProposedAction, decision: Decision, context: DecisionContext) -> None:
        try:
            self._queue.put_nowait(_Pending(action, decision, context))
        except asyncio.QueueFull:
            self._metrics.record_recording("dropped")
            self._dropped_since_warning += 1
            now = time.monotonic()
            if now - self._last_warning >= 10.0:
                log.warning(
                    "decision recording queue full (%d): %d decision(s) not recorded for replay",
                    self.limits.queue_size,
                    self._dropped_since_warning,
                )
                self._dropped_since_warning, self._last_warning = 0, now

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # -- the background writer -------------------------------------------------------------

    async def run(self) -> None:
        """Write batches until ``stop()``; then write what is still queued and return."""
        await self._prune_logged()
        next_prune = time.monotonic() + self.limits.prune_every_seconds
        while not (self._stopping.is_set() and self._queue.empty()):
            batch = await self._next_batch()
            if batch:
                await self._write(batch)
            if time.monotonic() >= next_prune:
                await self._prune_logged()
                next_prune = time.monotonic() + self.limits.prune_every_seconds

    def stop(self) -> None:
        self._stopping.set()

    async def flush(self) -> None:
        """Write everything queued so far, now, and wait for a batch ``run`` holds."""
        while not self._queue.empty():
            await self._write(self._take(self.limits.batch_size))
        await self._queue.join()

    async def _next_batch(self) -> list[_Pending]:
        """The first pending decision (waiting for one until stopped), then whatever
        arrives within the linger time, up to a batch."""
        if self._queue.empty():
            getter = asyncio.ensure_future(self._queue.get())
            stopper = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                if not getter.done():
                    getter.cancel()
            if getter.cancelled() or not getter.done():
                return []
            batch = [getter.result()]
        else:
            batch = [self._queue.get_nowait()]
        if not self._stopping.is_set() and self._queue.qsize() + 1 < self.limits.batch_size:
            # Linger so that rows travel together: one transaction per batch, not per call.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.limits.linger_seconds)
        return batch + self._take(self.limits.batch_size - 1)

    def _take(self, limit: int) -> list[_Pending]:
        taken: list[_Pending] = []
        while len(taken) < limit:
            try:
                taken.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return taken

    async def _write(self, batch: Sequence[_Pending]) -> None:
        try:
            await self._insert(batch)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _insert(self, batch: Sequence[_Pending]) -> None:
        rows: list[list[Any]] = []
        oversize = 0
        for pending in batch:
            row = self._row(pending)
            if row is None:
                continue
            oversize += row[COLUMNS.index("input_json")] is None
            rows.append(row)
            await asyncio.sleep(0)  # serialising is CPU on the loop: let calls in between
        if not rows:
            return
        sql = _INSERT_PREFIX + ", ".join([_ROW_PLACEHOLDERS] * len(rows))
        params = [value for row in rows for value in row]
        try:
            async with self._db.write() as conn:
                await conn.execute(sql, params)
        except DatabaseError as exc:
            self._metrics.record_recording("failed", len(rows))
            log.warning("%d decision(s) not recorded for replay: %s", len(rows), exc)
            return
        self._metrics.record_recording("recorded", len(rows) - oversize)
        if oversize:
            self._metrics.record_recording("oversize", oversize)

    def _row(self, pending: _Pending) -> list[Any] | None:
        action, decision, context = pending.action, pending.decision, pending.context
        try:
            document = action.as_input()
            erased = mask_input(document)
            text: str | None = canonical_json(document)
            size = len(text.encode("utf-8")) if text is not None else 0
            if size > self.limits.max_input_bytes:
                text = None
            values = {
                "decided_at": action.time,
                "call_id": context.call_id,
                "action_id": action.id,
                "source": context.source,
                "tool": action.tool,
                "subject": action.principal.subject,
                "outcome": decision.outcome,
                "bundle_revision": decision.bundle_revision,
                "decision_id": decision.decision_id,
                "target_json": canonical_json(action.target.model_dump(mode="json", exclude_defaults=True)),
                "input_json": text,
                "input_bytes": size,
                "erased_json": canonical_json(erased),
                "decision_json": canonical_json(decision.model_dump(mode="json")),
            }
        except ValueError as exc:  # a value canonical JSON cannot carry: nothing to replay
            self._metrics.record_recording("failed")
            log.warning("decision on %s %s not recorded for replay: %s", action.tool, action.id, exc)
            return None
        return [values[name] for name in COLUMNS]

    # -- retention -------------------------------------------------------------------------

    async def _prune_logged(self) -> None:
        try:
            removed = await self.prune()
        except DatabaseError as exc:
            log.warning("recorded decisions could not be pruned: %s", exc)
            return
        if removed:
            log.info("pruned %d recorded decision(s) past retention", removed)

    async def prune(self) -> int:
        """Delete rows older than the retention and beyond the newest ``max_rows``, a chunk per
        transaction (so live writes interleave). Returns how many went."""
        cutoff = format_time(self._clock() - self.limits.retention)
        removed = await self._delete_chunks(
            "SELECT seq FROM decision_records WHERE decided_at < ? ORDER BY seq LIMIT ?", [cutoff]
        )
        async with self._db.read() as conn:
            row = await conn.fetchone(
                "SELECT seq FROM decision_records ORDER BY seq DESC LIMIT 1 OFFSET ?", [self.limits.max_rows]
            )
        if row is not None:
            removed += await self._delete_chunks(
                "SELECT seq FROM decision_records WHERE seq <= ? ORDER BY seq LIMIT ?", [int(row[0])]
            )
        return removed

    async def _delete_chunks(self, select: str, params: list[Any]) -> int:
        removed = 0
        while True:
            async with self._db.write() as conn:
                count = await conn.execute(
                    f"DELETE FROM decision_records WHERE seq IN ({select})",  # noqa: S608 - constants
                    [*params, _PRUNE_CHUNK],
                )
            removed += count
            if count < _PRUNE_CHUNK:
                return removed
            await asyncio.sleep(0)
