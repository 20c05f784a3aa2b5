"""The executor over a real database (SQLite and PostgreSQL, fixture ``backend``), with an
in-memory runner standing in for the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from queue_support import ALICE, BOB, FakeClock, allow, deny, needs_approval, scale_call
from storage_fixtures import Backend

from gateway.contracts import Approval, Decision, PlannedCall, ProposedAction
from gateway.errors import AuditError, Forbidden, PolicyUnavailable
from gateway.ports import ActionState, AuditEvent, ParkedAction
from gateway.queue import Executor, QueueStore


class RecordingRunner:
    """Stands in for the policy client (answers re-evaluations with ``verdict``) and for the
    pipeline (records every execution)."""

    def __init__(
        self, verdict: Decision | Exception | None = None, *, fails_with: Exception | None = None
    ) -> None:
        self.verdict = verdict or allow()
        self.fails_with = fails_with
        self.executed: list[PlannedCall] = []
        self.reevaluated: list[tuple[str, ...]] = []
        self.block: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def evaluate_all(self, actions: Sequence[ProposedAction]) -> Decision:
        self.reevaluated.append(tuple(a.subject for a in actions[0].approvals))
        if isinstance(self.verdict, Exception):
            raise self.verdict
        return self.verdict

    async def execute(self, call: PlannedCall, decision: Decision) -> Any:
        self.started.set()
        if self.block is not None:
            await self.block.wait()
        if self.fails_with is not None:
            raise self.fails_with
        self.executed.append(call)
        return {"replicas": call.call_args["replicas"]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(backend: Backend, clock: FakeClock) -> AsyncIterator[QueueStore]:
    opened = await QueueStore.open(backend.target, clock=clock)
    yield opened
    await opened.close()


async def approved(store: QueueStore, clock: FakeClock, *, ttl_seconds: int = 900) -> ParkedAction:
    parked = await store.park(scale_call(), needs_approval(ttl_seconds=ttl_seconds), ALICE)
    stamp = clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return await store.record_approval(
        parked, Approval(subject="bob", groups=("sre",), approved_at=stamp), BOB, allow()
    )


async def test_an_approved_action_runs_once_and_its_result_is_stored(
    store: QueueStore, clock: FakeClock
) -> None:
    action = await approved(store, clock)
    runner = RecordingRunner()
    executor = Executor(store, runner, store.audit, policy=runner)

    [done] = await executor.run_once()
    assert await executor.run_once() == []

    assert done.state is ActionState.SUCCEEDED
    assert done.result == {"replicas": 5}
    assert len(runner.executed) == 1
    assert runner.executed[0] == action.call
    assert runner.reevaluated == [("bob",)]
    kinds = [r.kind for r in reversed(await store.audit.recent())]
    assert kinds == ["parked", "approval", "execution", "decision", "execution"]
    assert (await store.audit.verify()).rows == 5


async def test_a_call_edited_after_approval_is_refused_and_never_runs(
    backend: Backend, store: QueueStore, clock: FakeClock
) -> None:
    action = await approved(store, clock)
    edit = "UPDATE actions SET call_json = replace(call_json, '\"replicas\":5', '\"replicas\":50')"
    await backend.execute(f"{edit} WHERE id = ?", [action.id])
    runner = RecordingRunner()

    [done] = await Executor(store, runner, store.audit, policy=runner).run_once()

    assert done.call.call_args["replicas"] == 50  # the edit is really there
    assert done.state is ActionState.FAILED
    assert done.error is not None
    assert "fingerprint" in done.error
    assert runner.executed == []
    assert runner.reevaluated == []


async def test_a_fingerprint_column_rewritten_to_match_still_fails_the_approval_binding(
    backend: Backend, store: QueueStore, clock: FakeClock
) -> None:
    action = await approved(store, clock)
    edited = action.call.model_copy(update={"call_args": {**action.call.call_args, "replicas": 50}})
    await backend.execute(
        "UPDATE actions SET call_json = ?, fingerprint = ? WHERE id = ?",
        [edited.model_dump_json(), edited.fingerprint(), action.id],
    )
    runner = RecordingRunner()
    [done] = await Executor(store, runner, store.audit, policy=runner).run_once()
    assert done.state is ActionState.FAILED
    assert "different version" in (done.error or "")
    assert runner.executed == []


async def test_policy_denying_at_execution_time_fails_the_action_without_running_it(
    store: QueueStore, clock: FakeClock
) -> None:
    await approved(store, clock)
    runner = RecordingRunner(deny("change freeze"))
    [done] = await Executor(store, runner, store.audit, policy=runner).run_once()
    assert done.state is ActionState.FAILED
    assert "change freeze" in (done.error or "")
    assert runner.executed == []


async def test_a_policy_engine_failure_at_execution_time_fails_closed(
    store: QueueStore, clock: FakeClock
) -> None:
    await approved(store, clock)
    runner = RecordingRunner(PolicyUnavailable("OPA could not be reached"))
    [done] = await Executor(store, runner, store.audit, policy=runner).run_once()
    assert done.state is ActionState.FAILED
    assert "OPA could not be reached" in (done.error or "")
    assert runner.executed == []


async def test_a_backend_error_fails_the_action_with_its_message(store: QueueStore, clock: FakeClock) -> None:
    await approved(store, clock)
    runner = RecordingRunner(fails_with=Forbidden("RBAC forbids scaling deployments in payments"))
    [done] = await Executor(store, runner, store.audit, policy=runner).run_once()
    assert done.state is ActionState.FAILED
    assert done.error == "RBAC forbids scaling deployments in payments"


async def test_an_unexpected_error_is_recorded_by_type_only(store: QueueStore, clock: FakeClock) -> None:
    await approved(store, clock)
    runner = RecordingRunner(fails_with=RuntimeError("token=s3cr3t leaked in a message"))
    [done] = await Executor(store, runner, store.audit, policy=runner).run_once()
    assert done.state is ActionState.FAILED
    assert done.error == "execution failed unexpectedly (RuntimeError)"
    assert all("s3cr3t" not in r.model_dump_json() for r in await store.audit.recent())


async def test_an_approved_action_that_expired_is_swept_not_run(store: QueueStore, clock: FakeClock) -> None:
    action = await approved(store, clock, ttl_seconds=60)
    clock.advance(61)
    runner = RecordingRunner()
    assert await Executor(store, runner, store.audit, policy=runner).run_once() == []
    assert (await store.get(action.id)).state is ActionState.EXPIRED
    assert runner.executed == []


async def test_cancelling_the_executor_mid_execution_leaves_the_action_interrupted(
    store: QueueStore, clock: FakeClock
) -> None:
    action = await approved(store, clock)
    runner = RecordingRunner()
    runner.block = asyncio.Event()
    executor = Executor(store, runner, store.audit, policy=runner)
    task = asyncio.create_task(executor.run_once())
    await runner.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert (await store.get(action.id)).state is ActionState.INTERRUPTED
    assert await executor.run_once() == []
    assert runner.executed == []


async def test_run_forever_executes_what_gets_approved_and_stops_when_asked(
    store: QueueStore, clock: FakeClock
) -> None:
    runner = RecordingRunner()
    executor = Executor(store, runner, store.audit, policy=runner, poll_seconds=0.01)
    async with anyio.create_task_group() as group:
        group.start_soon(executor.run_forever)
        action = await approved(store, clock)
        with anyio.fail_after(5):
            # the database is the thing to watch: the executor polls it too
            while (await store.get(action.id)).state is not ActionState.SUCCEEDED:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        executor.stop()
    assert len(runner.executed) == 1


async def autocheckpoint(store: QueueStore) -> int:
    async with store.db.read() as conn:
        row = await conn.fetchone("PRAGMA wal_autocheckpoint")
    assert row is not None
    return int(row[0])


async def test_while_running_the_executor_owns_sqlite_wal_checkpoints(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path / "gateway.db")
    executor = Executor(
        store,
        RecordingRunner(),
        store.audit,
        policy=RecordingRunner(),
        poll_seconds=0.01,
        checkpoint_seconds=0,
    )
    assert await autocheckpoint(store) == 1000
    async with anyio.create_task_group() as group:
        group.start_soon(executor.run_forever)
        await anyio.sleep(0.05)
        assert await autocheckpoint(store) == 0  # commits no longer pay for checkpoints
        executor.stop()
    assert await autocheckpoint(store) == 1000
    await store.close()


async def test_a_long_execution_renews_its_lease(
    backend: Backend, store: QueueStore, clock: FakeClock
) -> None:
    action = await approved(store, clock)
    runner = RecordingRunner()
    runner.block = asyncio.Event()
    executor = Executor(store, runner, store.audit, policy=runner, heartbeat_seconds=0.01)
    task = asyncio.create_task(executor.run_once())
    await runner.started.wait()
    clock.advance(30)
    await asyncio.sleep(0.1)
    [(beat,)] = await backend.execute("SELECT heartbeat_at FROM actions WHERE id = ?", [action.id])
    assert beat == "2026-01-05T09:00:30.000000Z"
    runner.block.set()
    [done] = await task
    assert done.state is ActionState.SUCCEEDED


class BrokenAudit:
    async def record(self, event: AuditEvent) -> None:
        raise AuditError("could not write the audit log: disk I/O error")


async def test_nothing_runs_when_its_audit_record_cannot_be_written(
    store: QueueStore, clock: FakeClock
) -> None:
    await approved(store, clock)
    runner = RecordingRunner()
    [done] = await Executor(store, runner, BrokenAudit(), policy=runner).run_once()
    assert done.state is ActionState.FAILED
    assert "audit log could not be written" in (done.error or "")
    assert runner.executed == []
