"""Builders shared by the queue, audit and CLI suites: calls, decisions, principals, a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.contracts import (
    ApprovalRequirement,
    Decision,
    PlannedCall,
    Principal,
    ProposedAction,
    Reason,
    Target,
)

ALICE = Principal(subject="alice", groups=("dev",), transport="stdio", authenticated=True)
BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
CAROL = Principal(subject="carol", groups=("sre",), transport="cli", authenticated=True)
DAVE = Principal(subject="dave", groups=("sre",), transport="cli", authenticated=True)

APPROVAL_REASON = Reason(
    code="K8S-PROD-001",
    rule="production_writes_need_approval",
    severity="medium",
    effect="needs_approval",
    message="writes in production need an approval",
)


class FakeClock:
    """A clock tests move by hand, so expiry needs no sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def scale_call(
    *,
    replicas: int = 5,
    requester: Principal = ALICE,
    environment: str = "production",
    tool: str = "k8s_scale",
    call_args: dict[str, Any] | None = None,
) -> PlannedCall:
    """A one-action ``k8s_scale`` of deployment payments/api, as the pipeline would park it."""
    target = Target(
        cluster="sandbox",
        namespace="payments",
        api_version="apps/v1",
        kind="Deployment",
        name="api",
        environment=environment,
    )
    args = call_args or {"namespace": "payments", "name": "api", "replicas": replicas}
    action = ProposedAction(
        tool=tool,
        backend="kubernetes",
        operation="scale",
        effect="write",
        target=target,
        args=args,
        object={"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": replicas}},
        current={"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2}},
        principal=requester,
    )
    return PlannedCall(tool=tool, call_args=args, actions=(action,))


def needs_approval(
    *,
    min_approvals: int = 1,
    ttl_seconds: int = 900,
    approver_groups: tuple[str, ...] = (),
    allow_self_approval: bool = False,
) -> Decision:
    return Decision(
        outcome="needs_approval",
        reasons=[APPROVAL_REASON],
        approval=ApprovalRequirement(
            min_approvals=min_approvals,
            approver_groups=list(approver_groups),
            ttl_seconds=ttl_seconds,
            allow_self_approval=allow_self_approval,
        ),
        bundle_revision="rev-1",
        decision_id="decision-1",
    )


def allow() -> Decision:
    return Decision(outcome="allow", bundle_revision="rev-1", decision_id="decision-2")


def deny(message: str = "change freeze in production") -> Decision:
    reason = Reason(
        code="K8S-FREEZE-001", rule="change_freeze", severity="high", effect="deny", message=message
    )
    return Decision(outcome="deny", reasons=[reason], bundle_revision="rev-2")


SECRET_MANIFEST = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n"


def secret_apply_call(manifest: str = SECRET_MANIFEST) -> PlannedCall:
    """A ``k8s_apply`` of a Secret (password ``hunter2``), as the pipeline would park it:
    the action carries digests, the call's arguments carry the manifest text."""
    action = ProposedAction(
        tool="k8s_apply",
        backend="kubernetes",
        operation="apply",
        effect="write",
        target=Target(cluster="sandbox", namespace="payments", api_version="v1", kind="Secret", name="db"),
        args={"manifest_sha256": "cd" * 32, "manifest_bytes": len(manifest), "documents": 1},
        object={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db"},
            "data": {"password": "sha256:" + "ab" * 32},
        },
        current=None,
        principal=ALICE,
    )
    return PlannedCall(
        tool="k8s_apply", call_args={"manifest": manifest, "namespace": "payments"}, actions=(action,)
    )
