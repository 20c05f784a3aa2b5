"""The queue against the project's own rule set (fixture ``opa_server``): deleting a
Deployment in production needs two approvers other than the requester, then runs once."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from storage_fixtures import Backend

from gateway.contracts import PlannedCall, Principal, ProposedAction, Target
from gateway.errors import ApprovalRefused
from gateway.local.opa import OpaServer
from gateway.pipeline import Gateway
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.queue import Executor, QueueStore, approve
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec

pytestmark = pytest.mark.integration

REQUESTER = Principal(subject="alice", groups=("payments",), transport="stdio", authenticated=True)
BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
CAROL = Principal(subject="carol", groups=("platform-admins",), transport="cli", authenticated=True)


class DeleteArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    namespace: str
    name: str


def production_delete() -> PlannedCall:
    """``k8s_delete`` of Deployment payments/api in production, as the pipeline plans it."""
    args = {"kind": "Deployment", "namespace": "payments", "name": "api"}
    live = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "payments"},
        "spec": {"replicas": 2},
    }
    action = ProposedAction(
        tool="k8s_delete",
        backend="kubernetes",
        operation="delete",
        effect="delete",
        target=Target(
            cluster="sandbox",
            namespace="payments",
            api_version="apps/v1",
            kind="Deployment",
            name="api",
            environment="production",
        ),
        args=args,
        current=live,
        principal=REQUESTER,
    )
    return PlannedCall(tool="k8s_delete", call_args=args, actions=(action,))


def counting_delete(ran: list[dict[str, Any]]) -> ToolSpec[DeleteArgs]:
    """Stands in for the Kubernetes backend's ``k8s_delete``: records that it ran."""

    async def prepare(args: DeleteArgs) -> list[Prepared]:
        raise AssertionError("the queue runs the stored call; nothing is prepared again")

    async def execute(args: DeleteArgs, ctx: ExecutionContext) -> dict[str, Any]:
        ran.append(args.model_dump())
        return {"deleted": args.name}

    return ToolSpec(
        name="k8s_delete",
        title="Delete (counted)",
        description="Counts executions.",
        backend="kubernetes",
        operation="delete",
        effect="delete",
        args=DeleteArgs,
        prepare=prepare,
        execute=execute,
    )


async def test_a_production_delete_needs_two_approvals_under_the_project_policy(
    backend: Backend, opa_server: OpaServer
) -> None:
    settings = backend.settings(opa_url=opa_server.url, opa_timeout_seconds=5.0)
    store = await QueueStore.from_settings(settings)
    ran: list[dict[str, Any]] = []
    try:
        async with PolicyClient(settings) as policy:
            call = production_delete()
            decision = await policy.decide_all(call.actions)
            assert decision.outcome == "needs_approval", decision.reasons
            assert decision.approval is not None
            assert decision.approval.min_approvals == 2
            assert not decision.approval.allow_self_approval
            parked = await store.park(call, decision, REQUESTER)

            requester_at_cli = REQUESTER.model_copy(update={"groups": ("sre",), "transport": "cli"})
            with pytest.raises(ApprovalRefused):
                await approve(store, policy, parked.id, requester_at_cli)

            first = await approve(store, policy, parked.id, BOB)
            assert first.action.state is ActionState.PENDING
            assert first.missing is not None

            second = await approve(store, policy, parked.id, CAROL)
            assert second.action.state is ActionState.APPROVED

            registry = ToolRegistry()
            registry.register(counting_delete(ran))
            gateway = Gateway(settings, registry, policy, store, store.audit)
            executor = Executor(store, gateway, store.audit, policy=policy)
            [done] = await executor.run_once()
            assert await executor.run_once() == []
        assert done.state is ActionState.SUCCEEDED, done.error
        assert done.result == {"deleted": "api"}
        assert ran == [{"kind": "Deployment", "namespace": "payments", "name": "api"}]
        kinds = [r.kind for r in reversed(await store.audit.recent())]
        assert kinds == [
            "parked",
            "rejected_request",  # the requester's own approval
            "approval",
            "approval",
            "execution",
            "decision",
            "execution",
        ]
        assert (await store.audit.verify()).rows == 7
    finally:
        await store.close()
