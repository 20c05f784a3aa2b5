"""Property: whatever happens to parked actions, in whatever order, every state change is an
edge of the documented state machine, terminal states are final, an action is claimed at
most once, and the audit chain stays intact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from queue_support import ALICE, BOB, CAROL, FakeClock, allow, deny, needs_approval, scale_call
from storage_fixtures import BACKENDS, make_backend

from gateway.contracts import Approval, Decision
from gateway.errors import QueueError
from gateway.ports import TERMINAL_STATES, ActionState
from gateway.queue import QueueStore

S = ActionState
EDGES = {
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.DENIED),
    (S.PENDING, S.EXPIRED),
    (S.PENDING, S.CANCELLED),
    (S.APPROVED, S.EXECUTING),
    (S.APPROVED, S.EXPIRED),
    (S.APPROVED, S.CANCELLED),
    (S.EXECUTING, S.SUCCEEDED),
    (S.EXECUTING, S.FAILED),
    (S.EXECUTING, S.INTERRUPTED),
}

index = st.integers(0, 1)  # two actions, so operations meet the same one often
BY_KIND = {
    "park": st.tuples(st.just("park"), st.integers(1, 2), st.sampled_from([60, 600])),
    "approve": st.tuples(
        st.just("approve"),
        index,
        st.sampled_from(["bob", "carol"]),
        st.sampled_from(["allow", "more", "deny"]),
    ),
    "deny": st.tuples(st.just("deny"), index),
    "cancel": st.tuples(st.just("cancel"), index),
    "claim": st.tuples(st.just("claim"), index),
    "finish": st.tuples(st.just("finish"), index, st.sampled_from([S.SUCCEEDED, S.FAILED, S.INTERRUPTED])),
    "wait": st.tuples(st.just("wait"), st.sampled_from([10, 61, 700])),
    "sweep": st.tuples(st.just("sweep")),
}
# Repeated kinds weigh the draw towards the paths that reach execution.
KINDS = ["park", "approve", "approve", "approve", "claim", "claim", "finish", "finish",
         "deny", "cancel", "wait", "sweep"]  # fmt: skip
operation = st.sampled_from(KINDS).flatmap(lambda kind: BY_KIND[kind])

VERDICTS: dict[str, Decision] = {"allow": allow(), "more": needs_approval(min_approvals=2), "deny": deny()}


async def play(target: Path | str, ops: list[tuple[object, ...]]) -> None:
    clock = FakeClock()
    store = await QueueStore.open(target, clock=clock)
    # Two actions exist from the start, so every operation has something to act on.
    ids = [(await store.park(scale_call(), needs_approval(ttl_seconds=600), ALICE)).id for _ in range(2)]
    seen: dict[str, ActionState] = {}
    claims: dict[str, int] = {}
    try:
        for op in ops:
            kind = op[0]
            pick = ids[int(op[1]) % len(ids)] if ids and len(op) > 1 and isinstance(op[1], int) else None
            try:
                if kind == "park":
                    needs = needs_approval(min_approvals=int(op[1]), ttl_seconds=int(op[2]))  # type: ignore[call-overload]
                    parked = await store.park(scale_call(), needs, ALICE)
                    ids.append(parked.id)
                elif kind == "approve" and pick:
                    who = {"bob": BOB, "carol": CAROL}[str(op[2])]
                    action = await store.get(pick)
                    stamp = clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    approval = Approval(subject=who.subject, groups=who.groups, approved_at=stamp)
                    await store.record_approval(action, approval, who, VERDICTS[str(op[3])])
                elif kind == "deny" and pick:
                    await store.deny(pick, BOB, "no")
                elif kind == "cancel" and pick:
                    await store.cancel(pick, BOB)
                elif kind == "claim" and pick and await store.claim(pick) is not None:
                    claims[pick] = claims.get(pick, 0) + 1
                elif kind == "finish" and pick:
                    running = [i for i in ids if seen.get(i) is S.EXECUTING] or [pick]
                    await store.finish(running[0], op[2])  # type: ignore[arg-type]
                elif kind == "wait":
                    clock.advance(float(op[1]))  # type: ignore[arg-type]
                elif kind == "sweep":
                    await store.expire_due()
            except QueueError:
                pass  # refused: must have changed nothing, which the checks below verify
            for action_id in ids:
                now = (await store.get(action_id)).state
                before = seen.get(action_id, S.PENDING)
                if now is not before:
                    assert before not in TERMINAL_STATES, (before, now)
                    assert (before, now) in EDGES, (before, now)
                seen[action_id] = now
        assert all(count == 1 for count in claims.values())
        await store.audit.verify()
    finally:
        await store.close()


async def _create_schema(target: Path | str) -> None:
    await (await QueueStore.open(target)).close()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_any_sequence_of_operations_follows_the_state_machine(
    request: pytest.FixtureRequest, backend_name: str, tmp_path: Path
) -> None:
    backends = make_backend(request, backend_name, tmp_path)
    backend = next(backends)
    asyncio.run(_create_schema(backend.target))

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(operation, min_size=12, max_size=40))
    def example(ops: list[tuple[object, ...]]) -> None:
        for table in ("approvals", "actions", "audit"):  # an example never sees the last one's rows
            backend.execute_sync(f"DELETE FROM {table}")
        asyncio.run(play(backend.target, ops))

    try:
        example()
    finally:
        backends.close()
