"""What the model reads: call outcomes, decisions and parked actions as MCP tool results.

Every reply carries the same facts twice: as ``structured_content`` for clients that read
JSON, and as text for models that only read text. Denials and failures are ``is_error``
results listing every reason (code and message); a parked call is not an error, it says
how a human approves it. Nothing here ever shows a proposed action's ``object`` or
``current`` image: decisions do not carry them, and results are redacted before they get here
(``Gateway.execute`` is the one redaction boundary; nothing here redacts again).
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, TextContent

from gateway.contracts import Decision, Principal, Reason
from gateway.outcome import CallOutcome
from gateway.ports import ActionState, ParkedAction

__all__ = [
    "approve_command",
    "decision_reply",
    "error_reply",
    "executed_reply",
    "outcome_reply",
    "parked_reply",
    "rollback_command",
]

_TEXT_LIMIT = 100_000


def approve_command(action_id: str) -> str:
    return f"gateway queue approve {action_id}"


def rollback_command(action_id: str) -> str:
    return f"gateway queue rollback {action_id}"


def error_reply(message: str) -> CallToolResult:
    """An ``is_error`` result the model can act on (bad arguments, unknown id, …)."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def outcome_reply(outcome: CallOutcome) -> CallToolResult:
    """The reply to one backend tool call."""
    if outcome.status == "executed":
        body = outcome.result if isinstance(outcome.result, dict) else {"result": outcome.result}
        if outcome.effect in ("write", "delete"):
            # The id a rollback names (gateway_rollback, gateway queue rollback).
            body = {**body, "action_id": outcome.action_id}
        content = [TextContent(type="text", text=_dumps(body))]
        if outcome.decision is not None and outcome.decision.warnings:
            content.append(
                TextContent(type="text", text=_reason_lines("Policy warnings", outcome.decision.warnings))
            )
        return CallToolResult(content=content, structured_content=body)
    if outcome.status == "pending":
        return _pending(outcome)
    decision = outcome.decision
    if outcome.status == "denied" and decision is not None and outcome.state is None:
        body = {
            "outcome": "deny",
            "denied_by": "policy",
            "action_id": outcome.action_id,
            **_decision_facts(decision),
        }
        text = _reason_lines(f"Denied by policy: {outcome.tool} was not executed", decision.reasons)
        text += _warning_lines(decision)
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
        )
    # One vocabulary with the decision's: a denial is "deny" whoever gave it, and
    # ``denied_by`` tells policy (re-evaluated at approval) from an approver.
    body = {
        "outcome": "deny" if outcome.status == "denied" else "failed",
        **({"denied_by": outcome.denied_by or "approver"} if outcome.status == "denied" else {}),
        "action_id": outcome.action_id,
        "state": outcome.state.value if outcome.state else None,
        "error": outcome.error,
    }
    return CallToolResult(
        content=[TextContent(type="text", text=outcome.error or f"{outcome.tool} failed")],
        structured_content=body,
        is_error=True,
    )


def decision_reply(tool: str, decision: Decision) -> CallToolResult:
    """``gateway_check``: the decision a call would get; not an error even when it is deny."""
    body = {"tool": tool, "outcome": decision.outcome, **_decision_facts(decision)}
    verdict = {
        "allow": "would be allowed",
        "deny": "would be denied",
        "needs_approval": "would need approval",
    }
    text = _reason_lines(f"{tool} {verdict[decision.outcome]}", decision.reasons) + _warning_lines(decision)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body)


def parked_reply(
    parked: ParkedAction, principal: Principal, journal: dict[str, Any] | None = None
) -> CallToolResult:
    """``gateway_action``: state for anyone, details and result for the requester only.
    ``journal`` is the reversal journal's view of it once it ran: whether, by whom and when
    it was rolled back."""
    body: dict[str, Any] = {"action_id": parked.id, "state": parked.state.value}
    _rollback_facts(body, journal, show=_is_requester(parked, principal))
    if parked.denied_by is not None:
        body["denied_by"] = parked.denied_by
    if _is_requester(parked, principal):
        body.update(
            {
                "tool": parked.call.tool,
                "created_at": parked.created_at,
                "updated_at": parked.updated_at,
                "expires_at": parked.expires_at,
                "approvals": len(parked.approvals),
                "reasons": [_reason(r) for r in parked.decision.reasons],
            }
        )
        if parked.state == ActionState.SUCCEEDED:
            body["result"] = parked.result  # redacted when it left the backend (Gateway.execute)
        if parked.error:
            body["error"] = parked.error
        if parked.state == ActionState.PENDING:
            body["approve_with"] = approve_command(parked.id)
    return CallToolResult(content=[TextContent(type="text", text=_dumps(body))], structured_content=body)


def executed_reply(journal: dict[str, Any], principal: Principal) -> CallToolResult:
    """``gateway_action`` of a call that ran without approval, from the reversal journal's
    view (``gateway.queue.journal.JournalStore.view``): state for anyone, what it changed
    (identities, never content) and its rollback for the requester."""
    body: dict[str, Any] = {"action_id": journal["action_id"], "state": journal["state"]}
    own = principal.authenticated and journal["requester"] == principal.subject
    if own:
        body.update({k: journal[k] for k in ("tool", "executed_at", "target", "changes", "rollback_of")})
    _rollback_facts(body, journal, show=own)
    return CallToolResult(content=[TextContent(type="text", text=_dumps(body))], structured_content=body)


def _rollback_facts(body: dict[str, Any], journal: dict[str, Any] | None, *, show: bool) -> None:
    """Whether the action was rolled back (anyone), and by whom, when, with which action
    (the requester), or how to roll it back."""
    if journal is None:
        return
    done = journal.get("rolled_back")
    body["rolled_back"] = done if show and done else bool(done)
    if show and not done:
        body["rollback_with"] = f"gateway_rollback(action_id={journal['action_id']!r})"


def _is_requester(parked: ParkedAction, principal: Principal) -> bool:
    # Unauthenticated callers all share one name: they never see another call's result.
    return principal.authenticated and parked.requester.subject == principal.subject


def _pending(outcome: CallOutcome) -> CallToolResult:
    decision = outcome.decision
    approval = decision.approval if decision is not None else None
    body: dict[str, Any] = {
        "outcome": "needs_approval",
        "action_id": outcome.action_id,
        "state": outcome.state.value if outcome.state else ActionState.PENDING.value,
        "expires_at": outcome.expires_at,
        "approve_with": approve_command(outcome.action_id),
        **(_decision_facts(decision) if decision is not None else {}),
    }
    needs = ""
    if approval is not None:
        groups = f" from {', '.join(approval.approver_groups)}" if approval.approver_groups else ""
        self_ok = "" if approval.allow_self_approval else "; the requester may not approve it"
        needs = f" It needs {approval.min_approvals} approval(s){groups}{self_ok}."
    lines = [
        f"{outcome.tool} needs human approval and has not run. Action {outcome.action_id} is "
        f"{body['state']} until {outcome.expires_at}.{needs}",
        f"A human approves it with: {approve_command(outcome.action_id)}",
        f"Ask for its state and result with gateway_action(action_id={outcome.action_id!r}).",
    ]
    if decision is not None:
        lines.append(_reason_lines("Reasons", decision.reasons) + _warning_lines(decision))
    return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))], structured_content=body)


def _decision_facts(decision: Decision) -> dict[str, Any]:
    return {
        "reasons": [_reason(r) for r in decision.reasons],
        "approval": decision.approval.model_dump() if decision.approval else None,
        "warnings": [_reason(r) for r in decision.warnings],
        "dryrun": [_reason(r) for r in decision.dryrun],
        "bundle_revision": decision.bundle_revision,
    }


def _reason(reason: Reason) -> dict[str, str]:
    return reason.model_dump()


def _reason_lines(title: str, reasons: list[Reason]) -> str:
    if not reasons:
        return f"{title}."
    lines = [f"- {r.code} ({r.severity}): {r.message}" for r in reasons]
    return f"{title}:\n" + "\n".join(lines)


def _warning_lines(decision: Decision) -> str:
    """The warnings after the reasons, so a model that reads only text learns them too (a
    finding the live object already had is one: it says "pre-existing")."""
    if not decision.warnings:
        return ""
    return "\n" + _reason_lines("Policy warnings", decision.warnings)


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "… (truncated; see structured content)"
