"""How two decisions about the same proposed action differ: what ``gateway policy replay``
reports per action and the shadow evaluator counts per live decision.

A difference is classified once, by the first of these that holds:

============ ======================================================================
``outcome``  allow, deny and needs_approval differ (``allow→deny``, ``deny→allow``, …)
``reasons``  same outcome, a different set of reason codes (``deny→deny (reasons changed)``)
``approval`` needs_approval both times, different terms (approvals, groups, TTL, self-approval)
``findings`` same enforcement, different warn / dryrun codes (a mode switched to or from them)
============ ======================================================================

Messages are not compared (they quote values and may be reworded); codes are compared as
sets (the same rule firing for two containers is still that rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gateway.contracts import Decision, Outcome, Reason

__all__ = ["Change", "ChangeKind", "codes", "compare"]

ChangeKind = Literal["outcome", "reasons", "approval", "findings"]

_KIND_WORDS: dict[ChangeKind, str] = {
    "outcome": "",
    "reasons": " (reasons changed)",
    "approval": " (approval terms changed)",
    "findings": " (warn/dryrun findings changed)",
}


@dataclass(frozen=True)
class Change:
    """``before`` → ``after``, and what changed when the outcome did not."""

    before: Outcome
    after: Outcome
    kind: ChangeKind

    @property
    def label(self) -> str:
        return f"{self.before}→{self.after}{_KIND_WORDS[self.kind]}"


def codes(reasons: list[Reason]) -> list[str]:
    """The distinct reason codes, sorted."""
    return sorted({r.code for r in reasons})


def _terms(decision: Decision) -> tuple[Any, ...] | None:
    block = decision.approval
    if block is None:
        return None
    return (block.min_approvals, sorted(block.approver_groups), block.ttl_seconds, block.allow_self_approval)


def compare(before: Decision, after: Decision) -> Change | None:
    """How ``after`` differs from ``before``, or ``None`` when it does not (see the module docstring)."""
    kind: ChangeKind | None = None
    if before.outcome != after.outcome:
        kind = "outcome"
    elif codes(before.reasons) != codes(after.reasons):
        kind = "reasons"
    elif before.outcome == "needs_approval" and _terms(before) != _terms(after):
        kind = "approval"
    elif codes(before.warnings) != codes(after.warnings) or codes(before.dryrun) != codes(after.dryrun):
        kind = "findings"
    return None if kind is None else Change(before.outcome, after.outcome, kind)
