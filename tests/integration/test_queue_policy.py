"""The queue against real OPA (purpose-built test policies): four-eyes, quorum, expiry,
re-evaluation turning into deny, tampering, and the whole park → approve → execute path."""

from __future__ import annotations

from pathlib import Path

import pytest
from queue_harness import (
    ALICE,
    BOB,
    CAROL,
    TOOL,
    executions,
    gateway_stack,
    queue_opa,
    settings_for,
)
from queue_support import FakeClock
from storage_fixtures import Backend

from gateway.contracts import Principal
from gateway.errors import ApprovalRefused, InvalidTransition, PolicyUnavailable
from gateway.local.opa import OpaServer
from gateway.local.process import free_port
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.queue import approve

pytestmark = pytest.mark.integration
_ = queue_opa

DAVE_DEV = Principal(subject="dave", groups=("dev",), transport="cli", authenticated=True)


async def test_a_parked_call_runs_once_after_approval_with_every_step_audited(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    log = tmp_path / "executions.log"
    async with gateway_stack(settings_for(backend, queue_opa, "one"), log) as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "hello"}, ALICE, wait_seconds=0)
        assert outcome.status == "pending"
        parked = await stack.store.get(outcome.action_id)
        assert parked.decision.bundle_revision == "queuetest-1"
        assert [r.code for r in parked.decision.reasons] == ["TEST-APPROVAL"]
        assert await stack.executor.run_once() == []  # nothing runs before approval

        result = await approve(stack.store, stack.policy, outcome.action_id, BOB, reason="ok")
        assert result.action.state is ActionState.APPROVED
        [done] = await stack.executor.run_once()

        assert done.state is ActionState.SUCCEEDED
        assert done.result == {"appended": "hello", "action": outcome.action_id}
        records = list(reversed(await stack.store.audit.recent(action_id=outcome.action_id)))
        assert [r.kind for r in records] == [
            "decision",
            "parked",
            "approval",
            "execution",
            "decision",
            "execution",
        ]
        assert {r.fingerprint for r in records} == {parked.fingerprint}
        assert (await stack.store.audit.verify()).rows == len(records)
    assert len(executions(log)) == 1


async def test_the_requester_approving_their_own_call_is_refused(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    async with gateway_stack(settings_for(backend, queue_opa, "one"), tmp_path / "x.log") as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "mine"}, ALICE, wait_seconds=0)
        alice_at_cli = ALICE.model_copy(update={"groups": ("sre",), "transport": "cli"})
        with pytest.raises(ApprovalRefused, match="someone else"):
            await approve(stack.store, stack.policy, outcome.action_id, alice_at_cli)
        action = await stack.store.get(outcome.action_id)
        assert (action.state, action.approvals) == (ActionState.PENDING, ())


async def test_an_approver_outside_the_policys_groups_is_refused(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    async with gateway_stack(settings_for(backend, queue_opa, "one"), tmp_path / "x.log") as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "x"}, ALICE, wait_seconds=0)
        with pytest.raises(ApprovalRefused, match="sre"):
            await approve(stack.store, stack.policy, outcome.action_id, DAVE_DEV)


async def test_a_quorum_of_two_runs_only_after_the_second_approval(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    log = tmp_path / "executions.log"
    async with gateway_stack(settings_for(backend, queue_opa, "two"), log) as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "two"}, ALICE, wait_seconds=0)

        first = await approve(stack.store, stack.policy, outcome.action_id, BOB)
        assert first.action.state is ActionState.PENDING
        assert first.missing is not None
        assert "1 approval(s) recorded, policy requires 2" in first.missing
        assert await stack.executor.run_once() == []

        second = await approve(stack.store, stack.policy, outcome.action_id, CAROL)
        assert second.action.state is ActionState.APPROVED
        [done] = await stack.executor.run_once()
        assert done.state is ActionState.SUCCEEDED
    assert len(executions(log)) == 1


async def test_a_change_freeze_declared_before_approval_denies_the_action(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db, log = backend, tmp_path / "executions.log"
    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "frozen"}, ALICE, wait_seconds=0)
    async with gateway_stack(settings_for(db, queue_opa, "freeze"), log) as stack:
        result = await approve(stack.store, stack.policy, outcome.action_id, BOB)
        assert result.action.state is ActionState.DENIED
        assert "change freeze" in (result.action.error or "")
        assert await stack.executor.run_once() == []
    assert executions(log) == []


async def test_a_change_freeze_declared_after_approval_stops_the_execution(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db, log = backend, tmp_path / "executions.log"
    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "late"}, ALICE, wait_seconds=0)
        await approve(stack.store, stack.policy, outcome.action_id, BOB)
    async with gateway_stack(settings_for(db, queue_opa, "freeze"), log) as stack:
        [done] = await stack.executor.run_once()
    assert done.state is ActionState.FAILED
    assert "change freeze" in (done.error or "")
    assert executions(log) == []


async def test_an_action_past_its_ttl_can_neither_be_approved_nor_run(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    clock = FakeClock()
    log = tmp_path / "executions.log"
    async with gateway_stack(settings_for(backend, queue_opa, "one"), log, clock=clock) as stack:
        pending = await stack.gateway.call(TOOL, {"line": "p"}, ALICE, wait_seconds=0)
        approved = await stack.gateway.call(TOOL, {"line": "a"}, ALICE, wait_seconds=0)
        await approve(stack.store, stack.policy, approved.action_id, BOB, clock=clock)
        clock.advance(900)  # the test policy's ttl_seconds

        with pytest.raises(InvalidTransition, match="expired"):
            await approve(stack.store, stack.policy, pending.action_id, BOB, clock=clock)
        assert await stack.executor.run_once() == []
        assert (await stack.store.get(pending.action_id)).state is ActionState.EXPIRED
        assert (await stack.store.get(approved.action_id)).state is ActionState.EXPIRED
    assert executions(log) == []


async def test_a_call_edited_in_the_database_after_approval_is_never_executed(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db, log = backend, tmp_path / "executions.log"
    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "original"}, ALICE, wait_seconds=0)
        await approve(stack.store, stack.policy, outcome.action_id, BOB)
        await db.execute(
            "UPDATE actions SET call_json = replace(call_json, 'original', 'tampered') WHERE id = ?",
            [outcome.action_id],
        )
        [done] = await stack.executor.run_once()
    assert done.call.call_args["line"] == "tampered"
    assert done.state is ActionState.FAILED
    assert "fingerprint" in (done.error or "")
    assert executions(log) == []


async def test_an_unreachable_policy_engine_records_no_approval(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db = backend
    async with gateway_stack(settings_for(db, queue_opa, "one"), tmp_path / "x.log") as stack:
        outcome = await stack.gateway.call(TOOL, {"line": "x"}, ALICE, wait_seconds=0)
        dead = stack.settings.model_copy(update={"opa_url": f"http://127.0.0.1:{free_port()}"})
        async with PolicyClient(dead) as policy:
            with pytest.raises(PolicyUnavailable, match="nothing was recorded"):
                await approve(stack.store, policy, outcome.action_id, BOB)
        action = await stack.store.get(outcome.action_id)
        assert (action.state, action.approvals) == (ActionState.PENDING, ())
