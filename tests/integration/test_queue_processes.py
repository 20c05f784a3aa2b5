"""Several real processes on one queue database: racing executors and approvers produce one
execution; a gateway killed mid-execution leaves the action interrupted, never re-run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from queue_harness import (
    ALICE,
    BOB,
    TOOL,
    cli_env,
    executions,
    gateway_stack,
    queue_opa,
    settings_for,
    started,
)
from storage_fixtures import Backend

from gateway.errors import InvalidTransition
from gateway.local.opa import OpaServer
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.queue import QueueStore, approve

pytestmark = pytest.mark.integration
_ = queue_opa  # the module-scoped fixture, imported so pytest finds it

WORKER = Path(__file__).with_name("queue_worker.py")
GATEWAY_CLI = Path(sys.executable).with_name("gateway")


async def park_and_approve(
    db: Backend, opa: OpaServer, log: Path, lines: list[str], sleep: float = 0.0
) -> list[str]:
    """Park one call per line through the real gateway and real OPA; bob approves each."""
    ids = []
    async with gateway_stack(settings_for(db, opa, "one"), log) as stack:
        for line in lines:
            outcome = await stack.gateway.call(
                TOOL, {"line": line, "sleep_seconds": sleep}, ALICE, wait_seconds=0
            )
            assert outcome.status == "pending"
            result = await approve(stack.store, stack.policy, outcome.action_id, BOB)
            assert result.action.state is ActionState.APPROVED
            ids.append(outcome.action_id)
    return ids


@contextlib.asynccontextmanager
async def worker(db: Backend, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=WORKER.parent,
        env=db.environ(),
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line.strip() == b"ready", line
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_three_executor_processes_racing_run_each_action_exactly_once(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db, log, go = backend, tmp_path / "executions.log", tmp_path / "go"
    ids = await park_and_approve(db, queue_opa, log, ["a", "b", "c"])

    async with contextlib.AsyncExitStack() as stack:
        procs = [
            await stack.enter_async_context(worker(db, queue_opa.url, "one", str(log), "once", str(go)))
            for _ in range(3)
        ]
        go.touch()
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
    assert [p.returncode for p in procs] == [0, 0, 0], outputs

    assert sorted(line.split()[1] for line in executions(log)) == ["a", "b", "c"]
    store = await QueueStore.open(db.target)
    try:
        assert {(await store.get(i)).state for i in ids} == {ActionState.SUCCEEDED}
        claims = [r for r in await store.audit.recent(limit=200) if r.detail.get("step") == "claimed"]
        assert len(claims) == 3
        assert (await store.audit.verify()).rows > 0
    finally:
        await store.close()


async def test_two_approvers_racing_from_the_cli_produce_one_approval_and_one_execution(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db, log = backend, tmp_path / "executions.log"
    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "race"}, ALICE, wait_seconds=0)
        action_id = outcome.action_id

    procs = [
        await asyncio.create_subprocess_exec(
            str(GATEWAY_CLI),
            "queue",
            "approve",
            action_id,
            "--local",
            env=cli_env(db, queue_opa, "one", subject),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for subject in ("bob", "carol")
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
    codes = sorted(p.returncode or 0 for p in procs)
    assert codes == [0, 4], outputs

    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        assert len(await stack.executor.run_once()) == 1
        assert await stack.executor.run_once() == []
        done = await stack.store.get(action_id)
    assert done.state is ActionState.SUCCEEDED
    assert len(done.approvals) == 1
    assert len(executions(log)) == 1


async def test_a_gateway_killed_during_execution_leaves_the_action_interrupted_for_good(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db, log = backend, tmp_path / "executions.log"
    [action_id] = await park_and_approve(db, queue_opa, log, ["slow"], sleep=30)

    async with worker(db, queue_opa.url, "one", str(log), "forever") as proc:
        for _ in range(600):
            if started(log):
                break
            await asyncio.sleep(0.05)
        assert len(started(log)) == 1
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()

    [(raw_state,)] = await db.execute("SELECT state FROM actions WHERE id = ?", [action_id])
    assert raw_state == "executing"  # nothing could record the crash

    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        action = await stack.store.get(action_id)
        assert action.state is ActionState.INTERRUPTED
        assert await stack.executor.run_once() == []
        with pytest.raises(InvalidTransition, match="interrupted"):
            async with PolicyClient(stack.settings) as policy:
                await approve(stack.store, policy, action_id, BOB)
        kinds = [r.kind for r in await stack.store.audit.recent(action_id=action_id)]
    assert kinds[:2] == ["rejected_request", "interrupted"]  # newest first: the refused re-approval
    assert executions(log) == []
    assert len(started(log)) == 1
