"""The approve flow: a human's approval, judged by policy, recorded against the exact call.

Policy decides quorum and four-eyes. The flow asks OPA again about the stored actions
with every approval so far plus this one (``time`` = now) and applies the answer: allow
makes the action approved, deny makes it denied, needs_approval keeps it pending and
says what is still missing. Before asking, it refuses what the stored decision's own
approval block already rules out (the requester approving when self-approval is off,
an approver outside ``approver_groups``, a second approval by the same person), so an
approval that cannot count is never recorded.

If the policy engine itself fails (unreachable, timed out, undefined or malformed
answer), ``gateway.queue.reevaluation.reevaluate`` raises the ``PolicyError`` and nothing
is recorded: an outage must not turn into a denial of the action, nor into an approval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from gateway.audit import format_time
from gateway.contracts import Decision, Principal
from gateway.errors import (
    ApprovalRefused,
    AuditError,
    InvalidTransition,
    PolicyError,
    ProofRefused,
    QueueError,
    StaleApprovals,
)
from gateway.ports import ActionState, AuditEvent, ParkedAction
from gateway.queue._rows import Clock, requirement, system_clock
from gateway.queue.proofs import ApprovalProofs, ApprovalStatement
from gateway.queue.reevaluation import PolicyEvaluator, reevaluate
from gateway.queue.store import QueueStore, StoredProof

__all__ = ["ApprovalResult", "Signed", "approve", "missing_approvals"]

_ATTEMPTS: Final[int] = 5
_log = logging.getLogger(__name__)
_MIN_FINGERPRINT_PREFIX: Final[int] = 8


@dataclass(frozen=True)
class ApprovalResult:
    """The action after this approval, policy's re-evaluation, and, if it is still
    pending, a sentence saying what is missing."""

    action: ParkedAction
    decision: Decision
    missing: str | None


async def approve(
    store: QueueStore,
    policy: PolicyEvaluator,
    action_id: str,
    approver: Principal,
    *,
    reason: str | None = None,
    expect_fingerprint: str | None = None,
    clock: Clock = system_clock,
    proofs: ApprovalProofs | None = None,
    signed: Signed | None = None,
) -> ApprovalResult:
    """Record ``approver``'s approval of ``action_id`` and apply policy's verdict.

    ``signed`` is the statement the approver signed and the signature; without it the
    statement is built here (and must not need a signature). ``proofs`` says what an
    approval must carry; with an attestor (the approvals API), the gateway attests the new
    approval. Existing approvals are checked too: a forged one refuses the action.

    Raises ``UnknownAction``, ``InvalidTransition`` (not pending, expired, changed),
    ``ApprovalRefused`` (duplicate, self-approval, outside the approver groups, fingerprint
    not the one expected; ``ProofRefused`` for a signature or statement that cannot be
    accepted) or ``PolicyError`` (the engine failed); in every case no approval was
    recorded. Refusals are audited as ``rejected_request`` (who tried, and why not).
    """
    request = _Request(approver, reason, expect_fingerprint, proofs or ApprovalProofs(), signed)
    try:
        return await _approve(store, policy, action_id, request, clock)
    except QueueError as exc:
        attempt = AuditEvent(
            kind="rejected_request",
            action_id=action_id[:64],
            subject=approver.subject,
            transport=approver.transport,
            detail={"operation": "approve", "error": type(exc).__name__, "message": str(exc)},
        )
        try:
            await store.audit.record(attempt)
        except AuditError as audit_exc:  # the refusal matters more than its record
            _log.warning("could not audit a refused approval of %s: %s", action_id[:64], audit_exc)
        raise


@dataclass(frozen=True)
class Signed:
    """An approval statement (canonical JSON) as the approver signed it, and the armored
    SSH signature."""

    statement: str
    signature: str | None = None


@dataclass(frozen=True)
class _Request:
    approver: Principal
    reason: str | None
    expect_fingerprint: str | None
    proofs: ApprovalProofs
    signed: Signed | None


def _statement(
    request: _Request, action: ParkedAction, now: datetime
) -> tuple[ApprovalStatement, str | None]:
    """The statement this approval makes, checked against the action and the approver."""
    approver = request.approver
    if request.signed is None:
        statement = ApprovalStatement.for_action(
            action, approver.subject, approver.groups, format_time(now), request.reason
        )
        signature = None
    else:
        statement, signature = ApprovalStatement.parse(request.signed.statement), request.signed.signature
        if statement.approver != approver.subject:
            raise ProofRefused(f"the statement is by {statement.approver}, but you are {approver.subject}")
        if set(statement.groups) != set(approver.groups):
            raise ProofRefused("the statement's groups are not the ones your credential carries")
        if request.reason is not None and request.reason != statement.reason:
            raise ProofRefused("the reason given differs from the one in the signed statement")
    request.proofs.check_new(statement, signature, action, now)
    return statement, signature


async def _approve(
    store: QueueStore, policy: PolicyEvaluator, action_id: str, request: _Request, clock: Clock
) -> ApprovalResult:
    proofs = request.proofs
    for _ in range(_ATTEMPTS):
        action = await store.get(action_id)
        _precheck(action, request.approver, request.expect_fingerprint)
        moment = clock()
        statement, signature = _statement(request, action, moment)
        earlier = proofs.verified(action, await store.stored_approvals(action.id), moment)
        approval = statement.approval()
        try:
            decision = await reevaluate(policy, action.call, (*earlier, approval), now=format_time(moment))
        except PolicyError as exc:
            raise type(exc)(f"{exc}; nothing was recorded, try again") from exc
        text = statement.text()
        attestation = proofs.attestor.attest(text) if proofs.attestor is not None else None
        try:
            updated = await store.record_approval(
                action,
                approval,
                request.approver,
                decision,
                proof=StoredProof(statement=text, signature=signature, attestation=attestation),
            )
        except StaleApprovals:
            continue  # someone approved meanwhile: judge again with their approval included
        missing = missing_approvals(updated, decision) if updated.state is ActionState.PENDING else None
        return ApprovalResult(action=updated, decision=decision, missing=missing)
    raise InvalidTransition(f"action {action_id} kept changing while being approved; try again")


def _precheck(action: ParkedAction, approver: Principal, expect_fingerprint: str | None) -> None:
    if action.state is not ActionState.PENDING:
        raise InvalidTransition(
            f"action {action.id} is {action.state.value}; only pending actions can be approved"
        )
    if expect_fingerprint is not None:
        expected = expect_fingerprint.strip().lower()
        if len(expected) < _MIN_FINGERPRINT_PREFIX or not action.fingerprint.startswith(expected):
            raise ApprovalRefused(
                f"action {action.id} has fingerprint {action.fingerprint[:16]}…, not the one you "
                "reviewed: show it again before approving"
            )
    if action.call.fingerprint() != action.fingerprint:
        raise InvalidTransition(f"the stored call of action {action.id} no longer matches its fingerprint")
    if any(a.subject == approver.subject for a in action.approvals):
        raise ApprovalRefused(f"{approver.subject} has already approved action {action.id}")
    needs = requirement(action.decision)
    if approver.subject == action.requester.subject and not needs.allow_self_approval:
        raise ApprovalRefused(
            f"{approver.subject} requested action {action.id} and policy requires someone else to approve it"
        )
    if needs.approver_groups and not set(needs.approver_groups) & set(approver.groups):
        groups = ", ".join(needs.approver_groups)
        raise ApprovalRefused(f"approving action {action.id} needs a member of: {groups}")


def missing_approvals(action: ParkedAction, decision: Decision) -> str:
    """What a still-pending action lacks, in the words of policy's latest decision."""
    needs = decision.approval or requirement(action.decision)
    have = len(action.approvals)
    parts = [f"{have} approval(s) recorded, policy requires {needs.min_approvals}"]
    if needs.approver_groups:
        parts.append("approvers must be in: " + ", ".join(needs.approver_groups))
    if not needs.allow_self_approval:
        parts.append(f"the requester ({action.requester.subject}) cannot approve")
    pending = [r.message for r in decision.reasons if r.effect == "needs_approval"]
    if pending:
        parts.append("policy says: " + "; ".join(pending))
    return "; ".join(parts)
