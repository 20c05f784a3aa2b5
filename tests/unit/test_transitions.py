"""How two decisions about one action differ: outcome first, then reason codes, approval
terms, and warn / dryrun findings; messages never count."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.contracts import ApprovalRequirement, Decision, Reason
from gateway.transitions import compare


def reason(code: str, effect: str = "deny", message: str = "why") -> Reason:
    return Reason.model_validate(
        {"code": code, "rule": "r", "severity": "high", "effect": effect, "message": message}
    )


def decision(outcome: str, *reasons: Reason, **extra: Any) -> Decision:
    return Decision.model_validate({"outcome": outcome, "reasons": list(reasons), **extra})


APPROVAL = ApprovalRequirement(min_approvals=1, approver_groups=["sre"], ttl_seconds=900)


def test_same_decision_is_no_change() -> None:
    assert compare(decision("deny", reason("A")), decision("deny", reason("A"))) is None


def test_a_reworded_message_or_a_repeated_code_is_no_change() -> None:
    before = decision("deny", reason("A", message="container 'x' is privileged"))
    after = decision("deny", reason("A", message="containers 'x' and 'y'"), reason("A", message="y"))
    assert compare(before, after) is None


@pytest.mark.parametrize(
    ("before", "after", "label"),
    [
        (decision("allow"), decision("deny", reason("A")), "allow→deny"),
        (decision("deny", reason("A")), decision("allow"), "deny→allow"),
        (
            decision("allow"),
            decision("needs_approval", reason("P", "needs_approval"), approval=APPROVAL),
            "allow→needs_approval",
        ),
        (
            decision("needs_approval", reason("P", "needs_approval"), approval=APPROVAL),
            decision("allow"),
            "needs_approval→allow",
        ),
    ],
)
def test_an_outcome_change_is_named_by_both_outcomes(before: Decision, after: Decision, label: str) -> None:
    change = compare(before, after)
    assert change is not None
    assert (change.kind, change.label) == ("outcome", label)


def test_same_outcome_with_other_codes_is_reasons_changed() -> None:
    change = compare(decision("deny", reason("A")), decision("deny", reason("A"), reason("B")))
    assert change is not None
    assert change.label == "deny→deny (reasons changed)"


def test_needs_approval_with_stricter_terms_is_approval_changed() -> None:
    before = decision("needs_approval", reason("P", "needs_approval"), approval=APPROVAL)
    stricter = APPROVAL.model_copy(update={"min_approvals": 2})
    change = compare(before, decision("needs_approval", reason("P", "needs_approval"), approval=stricter))
    assert change is not None
    assert change.label == "needs_approval→needs_approval (approval terms changed)"


def test_a_rule_moved_to_warn_or_dryrun_is_a_findings_change() -> None:
    before = decision("allow")
    change = compare(before, decision("allow", warnings=[reason("W", "warn")]))
    assert change is not None
    assert change.label == "allow→allow (warn/dryrun findings changed)"
    assert compare(before, decision("allow", dryrun=[reason("D", "dryrun")])) is not None


def test_revision_and_decision_id_are_not_part_of_the_decision_compared() -> None:
    before = decision("allow", bundle_revision="one", decision_id="1")
    assert compare(before, decision("allow", bundle_revision="two", decision_id="2")) is None
