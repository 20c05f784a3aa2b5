"""Replies speak one outcome vocabulary: a denial is ``deny`` whoever gave it, and
``denied_by`` says whether policy or an approver refused it."""

from __future__ import annotations

from queue_support import ALICE, deny, needs_approval, scale_call

from gateway.outcome import CallOutcome, outcome_of_parked
from gateway.ports import ActionState, ParkedAction
from gateway.replies import outcome_reply, parked_reply


def _parked(**changes: object) -> ParkedAction:
    call = scale_call()
    base = ParkedAction(
        id=call.id,
        state=ActionState.PENDING,
        call=call,
        decision=needs_approval(),
        fingerprint=call.fingerprint(),
        requester=ALICE,
        created_at="2026-01-05T09:00:00.000000Z",
        updated_at="2026-01-05T09:00:00.000000Z",
        expires_at="2026-01-05T09:15:00.000000Z",
    )
    return base.model_copy(update=changes)


def test_a_policy_denial_and_a_human_denial_share_the_outcome_and_differ_by_field() -> None:
    by_policy = outcome_reply(
        CallOutcome(status="denied", tool="k8s_scale", action_id="a1", decision=deny(), denied_by="policy")
    )
    human = _parked(state=ActionState.DENIED, error="denied by bob: not today", denied_by="approver")
    by_human = outcome_reply(outcome_of_parked(human, needs_approval()))
    on_reevaluation = _parked(
        state=ActionState.DENIED, error="policy denied on re-evaluation", denied_by="policy"
    )
    by_reevaluation = outcome_reply(outcome_of_parked(on_reevaluation, needs_approval()))

    bodies = [r.structured_content or {} for r in (by_policy, by_human, by_reevaluation)]
    assert [b["outcome"] for b in bodies] == ["deny", "deny", "deny"]
    assert [b["denied_by"] for b in bodies] == ["policy", "approver", "policy"]
    assert all(r.is_error for r in (by_policy, by_human, by_reevaluation))


def test_a_failure_is_not_a_denial() -> None:
    expired = outcome_reply(outcome_of_parked(_parked(state=ActionState.EXPIRED), needs_approval()))
    body = expired.structured_content or {}
    assert body["outcome"] == "failed"
    assert "denied_by" not in body


def test_gateway_action_says_who_denied() -> None:
    human = _parked(state=ActionState.DENIED, error="denied by bob", denied_by="approver")
    body = parked_reply(human, ALICE).structured_content or {}
    assert (body["state"], body["denied_by"]) == ("denied", "approver")
