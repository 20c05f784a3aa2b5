"""The approve flow over a real database (SQLite and PostgreSQL, fixture ``backend``), with a
scripted stand-in for the policy client.

The stand-in implements the same rule the test Rego policies do (distinct approvers other
than the requester, counted against ``min_approvals``); the integration suite runs the
flow against real OPA.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from queue_support import ALICE, BOB, CAROL, DAVE, FakeClock, allow, deny, needs_approval, scale_call
from storage_fixtures import Backend

from gateway.contracts import Decision, ProposedAction
from gateway.errors import ApprovalRefused, InvalidTransition, PolicyUnavailable, UnknownAction
from gateway.ports import ActionState
from gateway.queue import QueueStore, approve


class QuorumPolicy:
    """Allows once ``quorum`` approvers other than the requester approved."""

    def __init__(self, quorum: int = 1, *, answer: Decision | Exception | None = None) -> None:
        self.quorum = quorum
        self.answer = answer
        self.seen: list[Sequence[ProposedAction]] = []
        self.before_answer: Callable[[], object] | None = None

    async def evaluate_all(self, actions: Sequence[ProposedAction]) -> Decision:
        self.seen.append(actions)
        if self.before_answer is not None:
            hook, self.before_answer = self.before_answer, None
            await hook()  # type: ignore[misc]
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer is not None:
            return self.answer
        action = actions[0]
        others = {a.subject for a in action.approvals if a.subject != action.principal.subject}
        return allow() if len(others) >= self.quorum else needs_approval(min_approvals=self.quorum)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(backend: Backend, clock: FakeClock) -> AsyncIterator[QueueStore]:
    opened = await QueueStore.open(backend.target, clock=clock)
    yield opened
    await opened.close()


async def audit_kinds(store: QueueStore) -> list[str]:
    return [r.kind for r in reversed(await store.audit.recent())]


async def test_one_approval_from_someone_else_approves_the_action(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    policy = QuorumPolicy()
    result = await approve(store, policy, parked.id, BOB, reason="looks right", clock=clock)

    assert result.action.state is ActionState.APPROVED
    assert result.missing is None
    [judged] = policy.seen[0]
    assert [a.subject for a in judged.approvals] == ["bob"]
    assert judged.approvals[0].reason == "looks right"
    assert judged.time == "2026-01-05T09:00:00.000000Z"
    assert (
        judged.model_copy(update={"approvals": (), "time": parked.call.actions[0].time})
        == parked.call.actions[0]
    )


async def test_the_requester_cannot_approve_their_own_action(store: QueueStore, clock: FakeClock) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    policy = QuorumPolicy()
    with pytest.raises(ApprovalRefused, match="requires someone else"):
        await approve(store, policy, parked.id, ALICE, clock=clock)
    assert policy.seen == []
    assert (await store.get(parked.id)).approvals == ()
    assert await audit_kinds(store) == ["parked", "rejected_request"]
    [attempt] = await store.audit.recent(limit=1)
    assert (attempt.subject, attempt.detail["error"]) == ("alice", "ApprovalRefused")


async def test_self_approval_is_left_to_policy_when_the_requirement_allows_it(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(allow_self_approval=True), ALICE)
    result = await approve(store, QuorumPolicy(), parked.id, ALICE, clock=clock)
    # the stand-in policy does not count the requester: still pending, and says why
    assert result.action.state is ActionState.PENDING
    assert result.missing is not None
    assert "1 approval(s) recorded, policy requires 1" in result.missing


async def test_a_quorum_of_two_needs_two_different_approvers(store: QueueStore, clock: FakeClock) -> None:
    parked = await store.park(scale_call(), needs_approval(min_approvals=2), ALICE)
    policy = QuorumPolicy(quorum=2)

    first = await approve(store, policy, parked.id, BOB, clock=clock)
    assert first.action.state is ActionState.PENDING
    assert first.missing is not None
    assert "policy requires 2" in first.missing
    with pytest.raises(ApprovalRefused, match="already approved"):
        await approve(store, policy, parked.id, BOB, clock=clock)

    second = await approve(store, policy, parked.id, CAROL, clock=clock)
    assert second.action.state is ActionState.APPROVED
    assert [a.subject for a in policy.seen[-1][0].approvals] == ["bob", "carol"]


async def test_an_approver_outside_the_required_groups_is_refused(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(approver_groups=("platform-leads",)), ALICE)
    with pytest.raises(ApprovalRefused, match="platform-leads"):
        await approve(store, QuorumPolicy(), parked.id, BOB, clock=clock)
    assert (await store.get(parked.id)).approvals == ()


async def test_a_deny_on_re_evaluation_denies_the_action(store: QueueStore, clock: FakeClock) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    result = await approve(store, QuorumPolicy(answer=deny("change freeze")), parked.id, BOB, clock=clock)
    assert result.action.state is ActionState.DENIED
    assert "change freeze" in (result.action.error or "")
    with pytest.raises(InvalidTransition, match="denied"):
        await approve(store, QuorumPolicy(), parked.id, CAROL, clock=clock)


async def test_a_policy_engine_outage_records_nothing_and_denies_nothing(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    outage = PolicyUnavailable("OPA could not be reached (ConnectError)")
    with pytest.raises(PolicyUnavailable, match="nothing was recorded"):
        await approve(store, QuorumPolicy(answer=outage), parked.id, BOB, clock=clock)
    after = await store.get(parked.id)
    assert (after.state, after.approvals) == (ActionState.PENDING, ())
    assert await audit_kinds(store) == ["parked"]


async def test_an_approval_racing_another_is_judged_again_with_both(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(min_approvals=2), ALICE)
    policy = QuorumPolicy(quorum=2)

    async def carol_approves_meanwhile() -> None:
        await approve(store, QuorumPolicy(quorum=2), parked.id, CAROL, clock=clock)

    policy.before_answer = carol_approves_meanwhile
    result = await approve(store, policy, parked.id, BOB, clock=clock)

    # bob's first verdict (only his approval) was stale; the retry saw carol's too
    assert [sorted(a.subject for a in call[0].approvals) for call in policy.seen] == [
        ["bob"],
        ["bob", "carol"],
    ]
    assert result.action.state is ActionState.APPROVED


async def test_approving_an_expired_or_unknown_action_is_refused(store: QueueStore, clock: FakeClock) -> None:
    parked = await store.park(scale_call(), needs_approval(ttl_seconds=30), ALICE)
    clock.advance(31)
    with pytest.raises(InvalidTransition, match="expired"):
        await approve(store, QuorumPolicy(), parked.id, BOB, clock=clock)
    with pytest.raises(UnknownAction):
        await approve(store, QuorumPolicy(), "missing", BOB, clock=clock)


async def test_an_approval_bound_to_another_fingerprint_is_refused(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    with pytest.raises(ApprovalRefused, match="not the one you reviewed"):
        await approve(
            store, QuorumPolicy(), parked.id, DAVE, expect_fingerprint="deadbeefdeadbeef", clock=clock
        )
    result = await approve(
        store, QuorumPolicy(), parked.id, DAVE, expect_fingerprint=parked.fingerprint[:12], clock=clock
    )
    assert result.action.state is ActionState.APPROVED
