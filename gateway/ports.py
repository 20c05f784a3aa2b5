"""The seams between the decision path and what it drives: the approval queue, the audit
log, the runner the queue's executor calls back into, and what a backend may ask policy.

``gateway.pipeline`` depends on these protocols only; ``gateway.queue`` and
``gateway.audit`` implement them over the gateway's database (SQLite or PostgreSQL), and
unit tests use in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from gateway.changes import Change, JournalRecord
from gateway.contracts import Approval, Decision, Effect, History, Outcome, PlannedCall, Principal

__all__ = [
    "TERMINAL_STATES",
    "ActionState",
    "ActivitySource",
    "ApprovalQueue",
    "AuditEvent",
    "AuditKind",
    "AuditSink",
    "BackendPolicy",
    "CallRunner",
    "Journal",
    "ParkedAction",
]


class ActionState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


TERMINAL_STATES = frozenset(
    {
        ActionState.SUCCEEDED,
        ActionState.FAILED,
        ActionState.DENIED,
        ActionState.EXPIRED,
        ActionState.CANCELLED,
        ActionState.INTERRUPTED,
    }
)


class ParkedAction(BaseModel):
    """A call waiting for (or past) human approval, as the queue holds it."""

    model_config = ConfigDict(frozen=True)

    id: str
    state: ActionState
    call: PlannedCall
    decision: Decision
    fingerprint: str
    requester: Principal
    approvals: tuple[Approval, ...] = ()
    created_at: str
    updated_at: str
    expires_at: str
    result: Any = None
    error: str | None = None
    # For a denied action: ``policy`` (re-evaluated when approved) or ``approver`` (a human).
    denied_by: Literal["policy", "approver"] | None = None


class ApprovalQueue(Protocol):
    """Where ``needs_approval`` calls are parked. Implemented by ``gateway.queue``."""

    async def park(self, call: PlannedCall, decision: Decision, requester: Principal) -> ParkedAction:
        """Store the call exactly as evaluated, in state ``pending``; return the row."""
        ...

    async def get(self, action_id: str) -> ParkedAction:
        """Return the action; raise ``UnknownAction`` if there is none with this id."""
        ...

    async def wait_for_change(self, action_id: str, seconds: float) -> bool:
        """Return once the action may have changed (true) or after ``seconds`` (false)."""
        ...


AuditKind = Literal[
    "decision",
    "parked",
    "approval",
    "denial",
    "cancellation",
    "expiry",
    "execution",
    "failure",
    "interrupted",
    "rejected_request",
    "rolled_back",
]


class AuditEvent(BaseModel):
    """One audit record before it is chained. Never holds secret values: targets, reason
    codes and messages, fingerprints and identifiers only."""

    model_config = ConfigDict(frozen=True)

    kind: AuditKind
    action_id: str | None = None
    tool: str | None = None
    subject: str | None = None
    transport: str | None = None
    target: dict[str, Any] = Field(default_factory=dict)
    outcome: Outcome | None = None
    reasons: list[dict[str, str]] = Field(default_factory=list)
    bundle_revision: str | None = None
    decision_id: str | None = None
    fingerprint: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditSink(Protocol):
    """Append-only record of every step. Implemented by ``gateway.audit``."""

    async def record(self, event: AuditEvent) -> None: ...


class CallRunner(Protocol):
    """What the queue's executor needs from the decision path: running an approved call.
    Implemented by ``gateway.pipeline.Gateway``; re-asking policy is
    ``gateway.queue.reevaluation.reevaluate``, shared with the approve flow."""

    async def execute(self, call: PlannedCall, decision: Decision) -> Any:
        """Run the call's tool once and return its redacted result. Raises
        ``BackendError`` on failure."""
        ...


class ActivitySource(Protocol):
    """Recent activity for runaway protection. Implemented by ``gateway.history``."""

    async def history(self, subject: str, session: str | None, *, reuse: bool = False) -> History:
        """The principal's and the session's counts; raises ``HistoryUnavailable``.
        ``reuse``: counts read from storage a moment ago will do (for a read, which the
        counts never block); otherwise storage is asked now."""
        ...

    def record(self, subject: str, session: str | None, effect: Effect) -> None:
        """Count one decided call."""
        ...


class BackendPolicy(Protocol):
    """What a backend may ask policy, given to it as it opens (``gateway.runtime``).

    Calling it is a check: the decision a tool call would get, as the principal of the
    call in progress, nothing executed (``palette_validate_configuration``).
    ``cluster_environments`` is what policy data says about clusters (``k8s_clusters``):
    ``{name: environment}`` for the names data gives one; raises ``PolicyError``.
    """

    async def __call__(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]: ...

    async def cluster_environments(self, clusters: Sequence[str]) -> dict[str, str]: ...


class Journal(Protocol):
    """What executed writes did, kept to undo them (``gateway.changes``). Implemented by
    ``gateway.queue.journal``."""

    async def record(
        self, call: PlannedCall, changes: Sequence[Change], decision: Decision, *, complete: bool
    ) -> None:
        """Keep the changes of an executed ``call`` (``complete``: the call succeeded; else
        it failed after these changes). A complete rollback marks what it rolled back."""
        ...

    async def find(self, ref: str) -> JournalRecord:
        """The record of an executed action by id or unique prefix; ``UnknownAction`` if none."""
        ...
