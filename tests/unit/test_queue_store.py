"""QueueStore over a real database (SQLite file and PostgreSQL, fixture ``backend``): parking,
reading, guarded transitions, expiry, recovery."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from queue_support import ALICE, BOB, CAROL, FakeClock, allow, deny, needs_approval, scale_call
from storage_fixtures import Backend

from gateway.contracts import Approval, Decision
from gateway.errors import (
    ApprovalRefused,
    ConfigError,
    CorruptAction,
    InvalidTransition,
    QueueError,
    StaleApprovals,
    UnknownAction,
)
from gateway.ports import ActionState, ParkedAction
from gateway.queue import QueueStore
from gateway.storage.sqlite_schema import SCHEMA_VERSION


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(backend: Backend, clock: FakeClock) -> AsyncIterator[QueueStore]:
    opened = await QueueStore.open(backend.target, clock=clock)
    yield opened
    await opened.close()


def approval(subject: str, clock: FakeClock) -> Approval:
    return Approval(subject=subject, groups=("sre",), approved_at=clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


async def approve_with(
    store: QueueStore, parked: ParkedAction, who: str, verdict: Decision, clock: FakeClock
) -> ParkedAction:
    principal = {"bob": BOB, "carol": CAROL}[who]
    return await store.record_approval(parked, approval(who, clock), principal, verdict)


async def kinds(store: QueueStore) -> list[str]:
    return [r.kind for r in reversed(await store.audit.recent(limit=100))]


async def test_park_stores_the_call_exactly_with_its_fingerprint_and_expiry(store: QueueStore) -> None:
    call = scale_call()
    parked = await store.park(call, needs_approval(ttl_seconds=600), ALICE)

    assert parked.state is ActionState.PENDING
    assert parked.id == call.id
    assert parked.call == call
    assert parked.fingerprint == call.fingerprint()
    assert parked.requester == ALICE
    assert parked.created_at == "2026-01-05T09:00:00.000000Z"
    assert parked.expires_at == "2026-01-05T09:10:00.000000Z"
    assert parked.decision.bundle_revision == "rev-1"
    assert await kinds(store) == ["parked"]


async def test_park_refuses_a_decision_that_does_not_need_approval(store: QueueStore) -> None:
    with pytest.raises(QueueError, match="only needs_approval"):
        await store.park(scale_call(), allow(), ALICE)
    assert await store.list_actions() == []


async def test_parking_the_same_call_twice_is_refused(store: QueueStore) -> None:
    call = scale_call()
    await store.park(call, needs_approval(), ALICE)
    with pytest.raises(QueueError, match="already parked"):
        await store.park(call, needs_approval(), ALICE)


async def test_unknown_id_raises_unknown_action(store: QueueStore) -> None:
    with pytest.raises(UnknownAction):
        await store.get("no-such-id")


async def test_a_unique_prefix_resolves_and_a_short_or_ambiguous_one_does_not(store: QueueStore) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    assert await store.resolve(parked.id[:8]) == parked.id
    assert await store.resolve(parked.id) == parked.id
    with pytest.raises(UnknownAction):
        await store.resolve(parked.id[:2])
    with pytest.raises(UnknownAction):
        await store.resolve("zzzz")


async def test_a_pending_action_past_its_expiry_reads_as_expired_before_any_sweep(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(ttl_seconds=60), ALICE)
    clock.advance(61)

    assert (await store.get(parked.id)).state is ActionState.EXPIRED
    assert await store.list_actions(state=ActionState.PENDING) == []
    assert [s.id for s in await store.list_actions(state=ActionState.EXPIRED)] == [parked.id]
    with pytest.raises(InvalidTransition, match="expired"):
        await approve_with(store, parked, "bob", allow(), clock)
    # touching it wrote the expiry, with its audit row, and recorded no approval
    assert (await store.get(parked.id)).approvals == ()
    assert await kinds(store) == ["parked", "expiry"]


async def test_expire_due_writes_every_live_row_past_its_expiry_once(
    store: QueueStore, clock: FakeClock
) -> None:
    short = await store.park(scale_call(), needs_approval(ttl_seconds=60), ALICE)
    long = await store.park(scale_call(), needs_approval(ttl_seconds=3600), ALICE)
    clock.advance(120)

    assert await store.expire_due() == 1
    assert await store.expire_due() == 0
    assert (await store.get(short.id)).state is ActionState.EXPIRED
    assert (await store.get(long.id)).state is ActionState.PENDING


async def test_list_is_newest_first_and_filters_by_state(store: QueueStore, clock: FakeClock) -> None:
    first = await store.park(scale_call(), needs_approval(), ALICE)
    clock.advance(1)
    second = await store.park(scale_call(), needs_approval(), ALICE)
    await store.cancel(first.id, BOB)

    assert [s.id for s in await store.list_actions()] == [second.id, first.id]
    assert [s.id for s in await store.list_actions(state=ActionState.CANCELLED)] == [first.id]
    assert [s.id for s in await store.list_actions(limit=1)] == [second.id]
    summary = (await store.list_actions(state=ActionState.PENDING))[0]
    assert summary.target["namespace"] == "payments"
    assert (summary.approvals, summary.min_approvals, summary.requester) == (0, 1, "alice")


async def test_an_approval_that_satisfies_policy_makes_the_action_approved(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    approved = await approve_with(store, parked, "bob", allow(), clock)

    assert approved.state is ActionState.APPROVED
    assert [a.subject for a in approved.approvals] == ["bob"]
    assert await kinds(store) == ["parked", "approval"]


async def test_an_approval_short_of_quorum_leaves_the_action_pending(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(min_approvals=2), ALICE)
    after_one = await approve_with(store, parked, "bob", needs_approval(min_approvals=2), clock)
    assert after_one.state is ActionState.PENDING

    after_two = await approve_with(store, after_one, "carol", allow(), clock)
    assert after_two.state is ActionState.APPROVED
    assert {a.subject for a in after_two.approvals} == {"bob", "carol"}


async def test_a_deny_on_re_evaluation_makes_the_action_denied_with_policys_reason(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    denied = await approve_with(store, parked, "bob", deny("change freeze"), clock)

    assert denied.state is ActionState.DENIED
    assert denied.error is not None
    assert "change freeze" in denied.error
    assert (denied.denied_by, (await store.get(parked.id)).denied_by) == ("policy", "policy")
    assert await kinds(store) == ["parked", "approval", "denial"]


async def test_the_same_person_cannot_approve_twice(store: QueueStore, clock: FakeClock) -> None:
    parked = await store.park(scale_call(), needs_approval(min_approvals=2), ALICE)
    once = await approve_with(store, parked, "bob", needs_approval(min_approvals=2), clock)
    with pytest.raises(ApprovalRefused, match="already approved"):
        await store.record_approval(once, approval("bob", clock), BOB, allow())
    assert (await store.get(parked.id)).state is ActionState.PENDING


async def test_an_approval_judged_without_a_newer_approval_is_stale(
    store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(min_approvals=2), ALICE)
    await approve_with(store, parked, "bob", needs_approval(min_approvals=2), clock)
    with pytest.raises(StaleApprovals):
        # carol's verdict was computed before bob's approval landed
        await approve_with(store, parked, "carol", needs_approval(min_approvals=2), clock)
    assert [a.subject for a in (await store.get(parked.id)).approvals] == ["bob"]


async def test_deny_and_cancel_are_guarded_transitions(store: QueueStore, clock: FakeClock) -> None:
    first = await store.park(scale_call(), needs_approval(), ALICE)
    second = await store.park(scale_call(), needs_approval(), ALICE)
    denied = await store.deny(first.id, BOB, "not during the sale")
    assert denied.state is ActionState.DENIED
    assert denied.error == "denied by bob: not during the sale"
    assert denied.denied_by == "approver"
    with pytest.raises(InvalidTransition, match="denied"):
        await store.cancel(first.id, BOB)

    approved = await approve_with(store, second, "bob", allow(), clock)
    with pytest.raises(InvalidTransition, match="only pending"):
        await store.deny(approved.id, CAROL, "too late")
    assert (await store.cancel(approved.id, CAROL, "rollback planned")).state is ActionState.CANCELLED
    assert await kinds(store) == ["parked", "parked", "denial", "approval", "cancellation"]


async def test_two_connections_racing_to_claim_produce_one_claim(backend: Backend, clock: FakeClock) -> None:
    one = await QueueStore.open(backend.target, clock=clock)
    two = await QueueStore.open(backend.target, clock=clock)
    try:
        parked = await one.park(scale_call(), needs_approval(), ALICE)
        await approve_with(one, parked, "bob", allow(), clock)
        claims = await asyncio.gather(one.claim(parked.id), two.claim(parked.id), one.claim(parked.id))
        assert sum(c is not None for c in claims) == 1
        assert (await two.get(parked.id)).state is ActionState.EXECUTING
    finally:
        await one.close()
        await two.close()


async def test_an_expired_approved_action_cannot_be_claimed(store: QueueStore, clock: FakeClock) -> None:
    parked = await store.park(scale_call(), needs_approval(ttl_seconds=60), ALICE)
    await approve_with(store, parked, "bob", allow(), clock)
    clock.advance(60)
    assert await store.claimable() == []
    assert await store.claim(parked.id) is None


async def test_an_execution_whose_process_died_is_marked_interrupted_on_open(
    backend: Backend, clock: FakeClock
) -> None:
    store = await QueueStore.open(backend.target, clock=clock)
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    await approve_with(store, parked, "bob", allow(), clock)
    await store.claim(parked.id)
    # a live claim (this process) is left alone
    assert await store.recover_interrupted() == 0
    await store.close()

    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    owner = json.dumps({"host": socket.gethostname(), "pid": dead.pid, "start": "1"})
    await backend.execute("UPDATE actions SET claimed_by = ? WHERE id = ?", [owner, parked.id])

    reopened = await QueueStore.open(backend.target, clock=clock)
    try:
        action = await reopened.get(parked.id)
        assert action.state is ActionState.INTERRUPTED
        assert await reopened.claimable() == []
        assert (await kinds(reopened))[-1] == "interrupted"
    finally:
        await reopened.close()


async def test_a_row_edited_into_garbage_reads_as_corrupt(backend: Backend, store: QueueStore) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    await backend.execute("UPDATE actions SET call_json = '{\"tool\": 1}' WHERE id = ?", [parked.id])
    with pytest.raises(CorruptAction, match="unreadable"):
        await store.get(parked.id)


async def test_the_sqlite_database_file_is_private_to_its_owner(tmp_path: Path, clock: FakeClock) -> None:
    await (await QueueStore.open(tmp_path / "gateway.db", clock=clock)).close()
    assert (tmp_path / "gateway.db").stat().st_mode & 0o077 == 0


async def claimed_elsewhere(backend: Backend, clock: FakeClock) -> str:
    """An action executing under a claim by another host (a container sharing the volume,
    another replica on the same PostgreSQL)."""
    store = await QueueStore.open(backend.target, clock=clock)
    parked = await store.park(scale_call(), needs_approval(ttl_seconds=3600), ALICE)
    await approve_with(store, parked, "bob", allow(), clock)
    await store.claim(parked.id)
    await store.close()
    owner = json.dumps({"host": "another-container", "pid": 1, "start": "1"})
    await backend.execute("UPDATE actions SET claimed_by = ? WHERE id = ?", [owner, parked.id])
    return parked.id


async def test_a_claim_from_another_host_stands_while_its_lease_is_fresh(
    backend: Backend, clock: FakeClock
) -> None:
    action_id = await claimed_elsewhere(backend, clock)
    clock.advance(59)
    store = await QueueStore.open(backend.target, clock=clock)
    try:
        assert (await store.get(action_id)).state is ActionState.EXECUTING
    finally:
        await store.close()


async def test_a_claim_from_another_host_whose_lease_lapsed_is_interrupted(
    backend: Backend, clock: FakeClock
) -> None:
    action_id = await claimed_elsewhere(backend, clock)
    clock.advance(61)
    store = await QueueStore.open(backend.target, clock=clock)
    try:
        assert (await store.get(action_id)).state is ActionState.INTERRUPTED
    finally:
        await store.close()


async def test_a_version_1_sqlite_database_is_migrated_in_place(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "gateway.db"
    store = await QueueStore.open(path, clock=clock)
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    await store.close()
    with sqlite3.connect(path) as conn:  # back to what the first release wrote
        for table, column in [
            ("actions", "heartbeat_at"),
            ("actions", "denied_by"),
            ("approvals", "statement"),
            ("approvals", "signature"),
            ("approvals", "attestation"),
            ("audit", "hash_format"),
        ]:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DROP TABLE activity")
        conn.execute("DROP TABLE journal")
        conn.execute("DROP TABLE decision_records")
        conn.execute("PRAGMA user_version = 1")

    reopened = await QueueStore.open(path, clock=clock)
    try:
        assert (await reopened.get(parked.id)).call == parked.call
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(actions)")}
            signed = {row[1] for row in conn.execute("PRAGMA table_info(approvals)")}
        assert {"heartbeat_at", "denied_by"} <= columns
        assert {"statement", "signature", "attestation"} <= signed
    finally:
        await reopened.close()


async def _database_from_a_newer_gateway(backend: Backend) -> None:
    await (await QueueStore.open(backend.target)).close()
    if backend.name == "sqlite":  # without a worker thread: the next tests count threads
        backend.execute_sync("PRAGMA user_version = 99")
    else:
        await backend.execute("UPDATE gateway_schema SET version = 99")


async def test_a_database_from_a_newer_gateway_is_refused(backend: Backend) -> None:
    await _database_from_a_newer_gateway(backend)
    with pytest.raises(ConfigError, match="schema version 99, newer than this gateway's"):
        await QueueStore.open(backend.target)


@pytest.mark.postgres
async def test_a_refused_postgresql_database_leaves_no_connection_behind(postgres_backend: Backend) -> None:
    backend = postgres_backend
    await _database_from_a_newer_gateway(backend)
    others = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    with pytest.raises(ConfigError, match="newer"):
        await QueueStore.open(backend.target)
    assert await backend.execute(others) == [(0,)]


async def test_a_refused_sqlite_database_leaves_no_connection_behind(tmp_path: Path) -> None:
    sqlite = Backend("sqlite", tmp_path)
    await _database_from_a_newer_gateway(sqlite)
    path = sqlite.target
    threads = threading.active_count()
    # The error is kept, as a caller logging it would: its traceback holds the refused
    # connection, so only an explicit close ends that connection's worker thread (one
    # left to the garbage collector later calls into a closed event loop).
    with pytest.raises(ConfigError, match="newer") as refused:
        await QueueStore.open(path)
    for _ in range(200):
        if threading.active_count() <= threads:
            break
        await asyncio.sleep(0.01)
    leaked = threading.active_count() > threads
    # Let go of the connection before failing, or its thread would keep the run alive.
    del refused
    gc.collect()
    assert not leaked, "the refused database's connection was left open"


async def test_an_approval_of_a_call_that_changed_since_it_was_read_is_refused(
    backend: Backend, store: QueueStore, clock: FakeClock
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    await backend.execute("UPDATE actions SET fingerprint = ? WHERE id = ?", ["0" * 64, parked.id])
    with pytest.raises(InvalidTransition, match="changed"):
        await approve_with(store, parked, "bob", allow(), clock)
    assert await backend.execute("SELECT count(*) FROM approvals") == [(0,)]
