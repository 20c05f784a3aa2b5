"""How one tool call ended, as the decision path reports it to the MCP front end."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gateway.contracts import Decision, Effect
from gateway.ports import TERMINAL_STATES, ActionState, ParkedAction
from gateway.redaction import redact_text

__all__ = ["CallOutcome", "outcome_of_parked"]


class CallOutcome(BaseModel):
    """How one tool call ended.

    ``status``: ``executed`` (allowed, or approved and run while the caller waited; ``result``
    is redacted, by ``Gateway.execute``), ``denied`` (``denied_by`` says whether policy or an
    approver refused it), ``pending`` (parked: ``action_id``, ``state``, ``expires_at``),
    ``failed`` (the backend failed, or the parked action expired, was cancelled or
    interrupted; ``error`` says why). ``effect`` is set for executed calls: the reply to a
    write names the action id to roll it back with.
    """

    model_config = ConfigDict(frozen=True)

    status: Literal["executed", "denied", "pending", "failed"]
    tool: str
    action_id: str
    decision: Decision | None = None
    result: Any = None
    state: ActionState | None = None
    expires_at: str | None = None
    error: str | None = None
    denied_by: Literal["policy", "approver"] | None = None
    effect: Effect | None = None

    @property
    def is_error(self) -> bool:
        return self.status in ("denied", "failed")


def outcome_of_parked(parked: ParkedAction, decision: Decision) -> CallOutcome:
    """How a parked call stands for its caller: executed with its (redacted) result, denied,
    failed (expired, cancelled, interrupted, failed), or still pending."""
    common: dict[str, Any] = {
        "tool": parked.call.tool,
        "action_id": parked.id,
        "decision": decision,
        "state": parked.state,
        "expires_at": parked.expires_at,
    }
    if parked.state == ActionState.SUCCEEDED:
        # Stored as it left ``Gateway.execute``, the redaction boundary: already redacted.
        effect = parked.call.actions[0].effect if parked.call.actions else None
        return CallOutcome(status="executed", result=parked.result, effect=effect, **common)
    if parked.state == ActionState.DENIED:
        return CallOutcome(
            status="denied",
            error=parked.error or "an approver denied the action",
            denied_by=parked.denied_by or "approver",
            **common,
        )
    if parked.state in TERMINAL_STATES:
        error = redact_text(parked.error or f"the action was {parked.state.value} and did not run")[:1000]
        return CallOutcome(status="failed", error=error, **common)
    return CallOutcome(status="pending", **common)
