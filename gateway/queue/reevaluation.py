"""Re-asking policy about a parked call with its approvals: the one function the approve
flow and the executor share.

Policy decides quorum and four-eyes, so both moments ask the same question: every stored
action of the call, with ``approvals`` filled in and ``time`` = now, judged and merged as on
first evaluation. A policy engine that cannot answer raises a ``PolicyError``; it is never
turned into a decision here, because the two callers handle an outage differently (the
approve flow records nothing, the executor fails the action saying the engine failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.contracts import Approval, Decision, PlannedCall, ProposedAction
from gateway.observation import deciding

__all__ = ["PolicyEvaluator", "reevaluate"]


class PolicyEvaluator(Protocol):
    """What re-evaluation needs from ``gateway.policy.PolicyClient``."""

    async def evaluate_all(self, actions: Sequence[ProposedAction]) -> Decision:
        """The merged decision; raises ``PolicyUnavailable`` or ``MalformedDecision``."""
        ...


async def reevaluate(
    policy: PolicyEvaluator, call: PlannedCall, approvals: Sequence[Approval], *, now: str
) -> Decision:
    """Policy's verdict on ``call`` with ``approvals`` at ``now``. Raises ``PolicyError``."""
    judged = tuple(approvals)
    actions = [a.model_copy(update={"approvals": judged, "time": now}) for a in call.actions]
    with deciding(call.id, "reevaluation"):
        return await policy.evaluate_all(actions)
