"""Recorded decisions on both backends: what is kept (input masked like OPA's decision log,
decision, revision, call), what is not (Secret data, oversize inputs, a full queue's
overflow), retention, windows, and rows damaged outside the gateway."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage_fixtures import Backend

from gateway.audit import format_time
from gateway.contracts import Approval, Decision, Principal, ProposedAction, Target
from gateway.db import Database
from gateway.metrics import Metrics
from gateway.observation import DecisionContext
from gateway.recording import MASKED_PATHS, DecisionRecorder, RecordingLimits
from gateway.records import CorruptRecord, DecisionRecords, RecordedDecision, RecordWindow
from gateway.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

ALICE = Principal(subject="alice", groups=("sre",), transport="http", authenticated=True)
CALL = DecisionContext(call_id="call-1", source="call")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET_DIGEST = "sha256:" + "ab" * 32


def action(
    tool: str = "k8s_get", *, at: datetime = NOW, obj: dict[str, Any] | None = None, **extra: Any
) -> ProposedAction:
    effect = "read" if tool in ("k8s_get", "k8s_list") else "write"
    return ProposedAction(
        tool=tool,
        backend="kubernetes",
        operation=tool.removeprefix("k8s_"),
        effect=effect,
        target=Target(
            cluster="sandbox", namespace="dev", kind="Deployment", name="web", environment="development"
        ),
        args={"name": "web"},
        object=obj,
        principal=ALICE,
        time=format_time(at),
        **extra,
    )


def allowed(revision: str = "rev-1") -> Decision:
    return Decision.model_validate({"outcome": "allow", "bundle_revision": revision, "decision_id": "d-1"})


def counted(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("gateway_recorded_decisions_total", {"result": result})
    return value or 0.0


async def rows(db: Database, window: RecordWindow | None = None) -> list[RecordedDecision | CorruptRecord]:
    return [row async for row in DecisionRecords(db).iterate(window)]


async def test_a_decision_reads_back_with_its_input_decision_revision_and_call(db: Database) -> None:
    metrics = Metrics()
    recorder = DecisionRecorder(db, metrics=metrics)
    judged = action(approvals=(Approval(subject="bob", groups=("sre",), approved_at=format_time(NOW)),))
    recorder.observe(judged, allowed(), DecisionContext(call_id="call-7", source="reevaluation"))
    await recorder.flush()

    [row] = await rows(db)
    assert isinstance(row, RecordedDecision)
    assert row.input == judged.as_input()  # approvals included: replay feeds them in as they were
    assert (row.call_id, row.action_id, row.source, row.tool, row.subject) == (
        "call-7",
        judged.id,
        "reevaluation",
        "k8s_get",
        "alice",
    )
    assert (row.decided_at, row.bundle_revision, row.decision_id) == (judged.time, "rev-1", "d-1")
    assert row.decision == allowed()
    assert row.target == {"cluster": "sandbox", "namespace": "dev", "kind": "Deployment", "name": "web",
                          "environment": "development"}  # fmt: skip
    assert row.erased == []
    assert counted(metrics, "recorded") == 1


async def test_secret_data_is_masked_as_opas_decision_log_masks_it(db: Database, backend: Backend) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": SECRET_DIGEST},
        "stringData": {"token": SECRET_DIGEST},
    }
    recorder = DecisionRecorder(db, metrics=Metrics())
    recorder.observe(action("k8s_apply", obj=secret, current=secret), allowed(), CALL)
    await recorder.flush()

    [row] = await rows(db)
    assert isinstance(row, RecordedDecision)
    assert row.input is not None
    assert row.input["object"] == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}}
    assert row.input["current"] == row.input["object"]
    assert sorted(row.erased) == sorted(MASKED_PATHS)
    # Not even the digest is kept, in any column.
    stored = await backend.execute("SELECT * FROM decision_records")
    assert SECRET_DIGEST not in repr(stored)


async def test_an_input_above_the_size_limit_is_recorded_without_it(db: Database) -> None:
    metrics = Metrics()
    recorder = DecisionRecorder(db, RecordingLimits(max_input_bytes=2048), metrics=metrics)
    recorder.observe(action("k8s_apply", obj={"kind": "ConfigMap", "big": "x" * 4096}), allowed(), CALL)
    recorder.observe(action(), allowed(), CALL)
    await recorder.flush()

    big, small = await rows(db)
    assert isinstance(big, RecordedDecision)
    assert isinstance(small, RecordedDecision)
    assert big.input is None
    assert big.input_bytes > 4096
    assert big.decision == allowed()  # the decision itself is kept
    assert small.input is not None
    assert (counted(metrics, "oversize"), counted(metrics, "recorded")) == (1, 1)


async def test_a_full_queue_drops_and_counts_without_blocking_or_raising(db: Database) -> None:
    metrics = Metrics()
    recorder = DecisionRecorder(db, RecordingLimits(queue_size=3), metrics=metrics)
    for _ in range(5):
        recorder.observe(action(), allowed(), CALL)
    assert counted(metrics, "dropped") == 2
    await recorder.flush()
    assert len(await rows(db)) == 3


async def test_the_writer_batches_in_the_background_and_stop_writes_what_is_queued(db: Database) -> None:
    recorder = DecisionRecorder(db, RecordingLimits(batch_size=50, linger_seconds=5.0), metrics=Metrics())
    task = asyncio.create_task(recorder.run())
    for _ in range(120):
        recorder.observe(action(), allowed(), CALL)
    await asyncio.sleep(0.2)
    written = len(await rows(db))
    assert written >= 50  # full batches went without waiting for the linger time
    recorder.stop()
    await asyncio.wait_for(task, 10)
    assert len(await rows(db)) == 120


async def test_prune_keeps_the_retention_window_and_the_newest_rows(db: Database) -> None:
    limits = RecordingLimits(retention=timedelta(days=7), max_rows=5)
    recorder = DecisionRecorder(db, limits, metrics=Metrics(), clock=lambda: NOW)
    for days in (30, 8, 6, 1, 0):
        recorder.observe(action(at=NOW - timedelta(days=days)), allowed(), CALL)
    await recorder.flush()
    assert await recorder.prune() == 2
    kept = await rows(db)
    assert [r.decided_at for r in kept if isinstance(r, RecordedDecision)] == [
        format_time(NOW - timedelta(days=d)) for d in (6, 1, 0)
    ]

    for minutes in range(1, 7):
        recorder.observe(action(at=NOW + timedelta(minutes=minutes)), allowed(), CALL)
    await recorder.flush()
    assert await recorder.prune() == 4  # 9 rows, 5 kept: the newest
    newest = [r.decided_at for r in await rows(db) if isinstance(r, RecordedDecision)]
    assert newest == [format_time(NOW + timedelta(minutes=m)) for m in range(2, 7)]


async def test_a_window_selects_by_time_and_tool_oldest_first_across_pages(db: Database) -> None:
    recorder = DecisionRecorder(db, metrics=Metrics())
    for minute in range(30):
        tool = "k8s_get" if minute % 3 else "k8s_scale"
        recorder.observe(action(tool, at=NOW + timedelta(minutes=minute)), allowed(), CALL)
    await recorder.flush()
    records = DecisionRecords(db)
    window = RecordWindow(
        since=format_time(NOW + timedelta(minutes=5)), until=format_time(NOW + timedelta(minutes=20))
    )
    found = [r async for r in records.iterate(window, page=4)]
    times = [r.decided_at for r in found if isinstance(r, RecordedDecision)]
    assert times == [format_time(NOW + timedelta(minutes=m)) for m in range(5, 20)]
    scales = [r async for r in records.iterate(RecordWindow(tool="k8s_scale"), page=3)]
    assert len(scales) == 10
    span = await records.span(window)
    assert (span.count, span.oldest, span.newest) == (15, times[0], times[-1])
    assert (await records.span(RecordWindow(since=format_time(NOW + timedelta(days=1))))).count == 0


async def test_a_row_damaged_outside_the_gateway_is_reported_not_raised(
    db: Database, backend: Backend
) -> None:
    recorder = DecisionRecorder(db, metrics=Metrics())
    for _ in range(3):
        recorder.observe(action(), allowed(), CALL)
    await recorder.flush()
    first, second, third = (
        row[0] for row in await backend.execute("SELECT seq FROM decision_records ORDER BY seq")
    )
    await backend.execute("UPDATE decision_records SET decision_json = ? WHERE seq = ?", ["{not json", first])
    await backend.execute("UPDATE decision_records SET input_json = ? WHERE seq = ?", ["[1, 2]", third])

    found = await rows(db)
    assert [type(r).__name__ for r in found] == ["CorruptRecord", "RecordedDecision", "CorruptRecord"]
    assert isinstance(found[0], CorruptRecord)
    assert (found[0].seq, found[0].reason) == (first, "decision is not JSON")
    assert isinstance(found[2], CorruptRecord)
    assert found[2].reason == "input is not a JSON object"
    assert found[1].seq == second


# The schema version that creates decision_records (histories are append-only lists).
RECORDS_VERSION = next(i for i, sql in enumerate(MIGRATIONS, 1) if "CREATE TABLE decision_records" in sql)


def test_an_older_sqlite_database_gains_the_table_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"

    async def open_and_close() -> None:
        await (await Database.open(path)).close()

    asyncio.run(open_and_close())
    with sqlite3.connect(path) as conn:  # as a gateway before recorded decisions left it
        conn.execute("DROP TABLE decision_records")
        conn.execute(f"PRAGMA user_version = {RECORDS_VERSION - 1}")
    asyncio.run(open_and_close())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT count(*) FROM decision_records").fetchone() == (0,)
