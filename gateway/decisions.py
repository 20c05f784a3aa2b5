"""The algebra of decisions, independent of where they come from: the fail-closed deny the
gateway substitutes when policy could not decide, and the merge of the decisions about the
several actions of one call."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.contracts import ApprovalRequirement, Decision, Obligations, Outcome, Reason
from gateway.errors import HistoryUnavailable, MalformedDecision

__all__ = [
    "CODE_HISTORY_UNAVAILABLE",
    "CODE_MALFORMED",
    "fail_closed",
    "merge_decisions",
    "refuse_without_history",
]

# Also the policy client's code for an answer that does not match the contract.
CODE_MALFORMED = MalformedDecision.code
CODE_HISTORY_UNAVAILABLE = HistoryUnavailable.code


def fail_closed(code: str, message: str) -> Decision:
    """The decision the gateway substitutes when policy could not decide: deny, saying why."""
    return Decision(
        outcome="deny",
        reasons=[
            Reason(
                code=code,
                rule="policy_engine",
                severity="high",
                effect="deny",
                message=f"policy engine failed, so the call is denied: {message}",
            )
        ],
    )


def refuse_without_history(message: str) -> Decision:
    """The gateway's own deny of a change whose caller's recent activity could not be
    counted: runaway protection cannot be judged, so the change does not run."""
    return Decision(
        outcome="deny",
        reasons=[
            Reason(
                code=CODE_HISTORY_UNAVAILABLE,
                rule="runaway_protection",
                severity="high",
                effect="deny",
                message=message,
            )
        ],
    )


def merge_decisions(decisions: Iterable[Decision]) -> Decision:
    """One decision for a call of several actions.

    Any deny wins, else any needs_approval, else allow. Reasons, warnings and dryrun are
    concatenated (exact duplicates once). The approval block is the strictest: the largest
    ``min_approvals``, the union of approver groups, the shortest TTL, self-approval only if
    every block allows it. Obligations: the union of redact paths, the smallest
    ``max_log_lines``. Revisions and decision ids are joined with ``,`` when they differ.
    """
    items = list(decisions)
    if not items:
        return fail_closed(CODE_MALFORMED, "no decision to merge")
    if len(items) == 1:
        return items[0]
    outcomes = {d.outcome for d in items}
    outcome: Outcome = (
        "deny" if "deny" in outcomes else "needs_approval" if "needs_approval" in outcomes else "allow"
    )
    blocks = [d.approval for d in items if d.approval is not None]
    approval = None
    if blocks:
        approval = ApprovalRequirement(
            min_approvals=max(b.min_approvals for b in blocks),
            approver_groups=_union(g for b in blocks for g in b.approver_groups),
            ttl_seconds=min(b.ttl_seconds for b in blocks),
            allow_self_approval=all(b.allow_self_approval for b in blocks),
        )
    limits = [d.obligations.max_log_lines for d in items if d.obligations.max_log_lines is not None]
    return Decision(
        outcome=outcome,
        reasons=_unique(r for d in items for r in d.reasons),
        approval=approval,
        obligations=Obligations(
            redact=_union(p for d in items for p in d.obligations.redact),
            max_log_lines=min(limits) if limits else None,
        ),
        warnings=_unique(r for d in items for r in d.warnings),
        dryrun=_unique(r for d in items for r in d.dryrun),
        bundle_revision=_join(d.bundle_revision for d in items),
        decision_id=_join(d.decision_id for d in items),
    )


def _unique(reasons: Iterable[Reason]) -> list[Reason]:
    seen: dict[Reason, None] = {}
    for reason in reasons:
        seen.setdefault(reason, None)
    return list(seen)


def _union(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _join(values: Iterable[str | None]) -> str | None:
    present = _union(v for v in values if v)
    return ",".join(present) or None
