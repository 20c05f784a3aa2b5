"""Queue transitions as events: what the store tells its listeners (webhooks) after each
transition commits. Never carries call arguments, results or secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.ports import ParkedAction
from gateway.queue._rows import requirement, target_summary

__all__ = ["Listener", "QueueEvent", "event_of"]


class QueueEvent(BaseModel):
    """One queue transition, as receivers get it (no call arguments, no secrets)."""

    model_config = ConfigDict(frozen=True)

    event: str
    action_id: str
    tool: str
    state: str
    target: dict[str, Any]
    requester: str
    actor: str
    time: str
    expires_at: str
    approvals: int
    min_approvals: int
    reason: str | None = None
    denied_by: str | None = None

    def slack_text(self) -> str:
        where = "/".join(str(self.target[k]) for k in ("cluster", "namespace") if self.target.get(k))
        what = " ".join(str(self.target[k]) for k in ("kind", "name") if self.target.get(k))
        env = f" [{self.target['environment']}]" if self.target.get("environment") else ""
        line = f"policy-gateway: {self.tool} on {where} {what}{env} is *{self.event}* (by {self.actor})"
        if self.event in ("parked", "approval"):
            line += f"; {self.approvals}/{self.min_approvals} approvals"
            line += f" — `gateway queue approve {self.action_id}`"
        if self.reason:
            line += f": {self.reason}"
        return line


Listener = Callable[[QueueEvent], None]


def event_of(
    event: str, action: ParkedAction, *, actor: str, time: str, reason: str | None = None
) -> QueueEvent:
    """The event for ``action`` as it stands after the transition."""
    return QueueEvent(
        event=event,
        action_id=action.id,
        tool=action.call.tool,
        state=action.state.value,
        target=target_summary(action.call),
        requester=action.requester.subject,
        actor=actor,
        time=time,
        expires_at=action.expires_at,
        approvals=len(action.approvals),
        min_approvals=requirement(action.decision).min_approvals,
        reason=reason,
        denied_by=action.denied_by,
    )
