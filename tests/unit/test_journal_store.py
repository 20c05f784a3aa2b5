"""The reversal journal over a real database (SQLite file and PostgreSQL, fixture ``backend``):
what executed writes changed, sealed at rest, shown without images, marked once rolled back."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from queue_support import ALICE, BOB, FakeClock, allow, scale_call
from storage_fixtures import Backend

from gateway.changes import Change
from gateway.contracts import ApprovalRequirement, Decision, PlannedCall, ProposedAction
from gateway.errors import CorruptAction, QueueError, SealError, UnknownAction
from gateway.queue import QueueStore
from gateway.queue.sealing import Sealer, new_key_line
from gateway.settings import Settings

SECRET_VALUE = "hunter2-journal-7f3a"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sealer(tmp_path_factory: pytest.TempPathFactory) -> Sealer:
    keys = tmp_path_factory.mktemp("keys") / "queue.keys"
    keys.write_text(new_key_line("k1") + "\n")
    found = Sealer.from_settings(Settings(queue_keys_file=keys), create=False)
    assert found is not None
    return found


@pytest.fixture
async def store(backend: Backend, clock: FakeClock, sealer: Sealer) -> AsyncIterator[QueueStore]:
    opened = await QueueStore.open(backend.target, clock=clock, sealer=sealer)
    yield opened
    await opened.close()


def secret_change(call: PlannedCall) -> Change:
    """A Secret changed by ``call``: its before-image holds a value in clear, as the API returns it."""
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    before = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "payments", "uid": "u-1", "resourceVersion": "41"},
        "data": {"password": encoded},
    }
    after = {**before, "metadata": {**before["metadata"], "resourceVersion": "42"}}
    return Change(index=0, kind="updated", backend="kubernetes", target=call.actions[0].target,
                  before=before, after=after, written={"stringData": {"password": "new"}})  # fmt: skip


def rollback_of(original: PlannedCall, requester: object = BOB) -> PlannedCall:
    action = original.actions[0]
    rollback = ProposedAction(
        tool="gateway_rollback",
        backend="kubernetes",
        operation="rollback",
        effect="write",
        target=action.target,
        args={"rollback_of": original.id, "original_tool": original.tool},
        principal=requester,
    )
    return PlannedCall(tool="gateway_rollback", call_args={"action_id": original.id}, actions=(rollback,))


async def test_an_executed_call_is_kept_with_its_changes(store: QueueStore) -> None:
    call = scale_call()
    change = secret_change(call)
    await store.journal.record(call, [change], allow(), complete=True)

    record = await store.journal.find(call.id[:8])

    assert record.action_id == call.id
    assert record.changes == (change,)
    assert record.call == call
    assert record.requester == ALICE
    assert record.executed_at == "2026-01-05T09:00:00.000000Z"
    assert record.complete
    assert record.rolled_back is None


async def test_the_approver_groups_of_the_decision_it_ran_under_are_kept(store: QueueStore) -> None:
    call = scale_call()
    ran_under = Decision(outcome="allow", approval=ApprovalRequirement(approver_groups=["sre", "dba"]))
    await store.journal.record(call, [secret_change(call)], ran_under, complete=True)
    assert (await store.journal.find(call.id)).approver_groups == ("sre", "dba")


async def test_before_images_are_sealed_at_rest(store: QueueStore, backend: Backend) -> None:
    call = scale_call()
    await store.journal.record(call, [secret_change(call)], allow(), complete=True)

    rows = await backend.execute("SELECT * FROM journal")
    stored = repr(rows)
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in stored
    assert SECRET_VALUE not in stored
    sealed = await backend.execute("SELECT call_json, changes_json FROM journal")
    assert all(str(value).startswith("sealed:v1:k1:") for value in sealed[0])


async def test_views_show_identities_and_never_an_image(store: QueueStore) -> None:
    call = scale_call()
    await store.journal.record(call, [secret_change(call)], allow(), complete=True)

    view = await store.journal.view(call.id)

    assert view is not None
    assert view["changes"] == [
        {"change": "updated", "target": call.actions[0].target.model_dump(exclude_defaults=True),
         "uid": "u-1", "resourceVersion": "42"}
    ]  # fmt: skip
    assert view["requester"] == "alice"
    assert view["rolled_back"] is None
    assert "password" not in repr(view)


async def test_a_complete_rollback_marks_the_original_once_and_audits_it(store: QueueStore) -> None:
    original = scale_call()
    await store.journal.record(original, [secret_change(original)], allow(), complete=True)
    first, second = rollback_of(original), rollback_of(original)

    await store.journal.record(first, [secret_change(first)], allow(), complete=True)
    await store.journal.record(second, [secret_change(second)], allow(), complete=True)

    done = (await store.journal.find(original.id)).rolled_back
    assert done is not None
    assert (done.by_action, done.subject, done.at) == (first.id, "bob", "2026-01-05T09:00:00.000000Z")
    assert (await store.journal.find(first.id)).rollback_of == original.id
    marks = [r for r in await store.audit.recent(limit=10) if r.kind == "rolled_back"]
    assert [(r.action_id, r.subject, r.detail["by_action"]) for r in marks] == [
        (original.id, "bob", first.id)
    ]
    await store.audit.verify()


async def test_an_incomplete_rollback_does_not_mark_the_original(store: QueueStore) -> None:
    original = scale_call()
    await store.journal.record(original, [secret_change(original)], allow(), complete=True)
    partial = rollback_of(original)
    await store.journal.record(partial, [secret_change(partial)], allow(), complete=False)

    assert (await store.journal.find(original.id)).rolled_back is None
    assert (await store.journal.view(partial.id) or {})["state"] == "failed"


async def test_a_call_without_changes_is_not_journaled(store: QueueStore) -> None:
    call = scale_call()
    await store.journal.record(call, [], allow(), complete=True)
    with pytest.raises(UnknownAction, match="no executed action has id"):
        await store.journal.find(call.id)
    assert await store.journal.view(call.id) is None


async def test_a_call_is_journaled_once(store: QueueStore) -> None:
    call = scale_call()
    await store.journal.record(call, [secret_change(call)], allow(), complete=True)
    with pytest.raises(QueueError, match="already journaled"):
        await store.journal.record(call, [secret_change(call)], allow(), complete=True)


async def test_short_prefixes_are_refused(store: QueueStore) -> None:
    call = scale_call()
    await store.journal.record(call, [secret_change(call)], allow(), complete=True)
    with pytest.raises(UnknownAction, match="no executed action has id"):
        await store.journal.resolve(call.id[:3])
    assert await store.journal.resolve(call.id[:4]) == call.id


async def test_a_row_sealed_for_another_action_does_not_open(store: QueueStore, backend: Backend) -> None:
    first, second = scale_call(), scale_call()
    for call in (first, second):
        await store.journal.record(call, [secret_change(call)], allow(), complete=True)
    stolen = (await backend.execute("SELECT changes_json FROM journal WHERE action_id = ?", [first.id]))[0][0]
    await backend.execute("UPDATE journal SET changes_json = ? WHERE action_id = ?", [stolen, second.id])

    with pytest.raises(SealError, match=f"journal of action {second.id} cannot be opened"):
        await store.journal.find(second.id)


async def test_an_edited_row_is_reported_as_corrupt(store: QueueStore, backend: Backend) -> None:
    call = scale_call()
    await store.journal.record(call, [secret_change(call)], allow(), complete=True)
    await backend.execute("UPDATE journal SET requester_json = ? WHERE action_id = ?", ["{", call.id])
    with pytest.raises(CorruptAction, match="unreadable"):
        await store.journal.find(call.id)


async def test_a_journal_without_its_key_cannot_be_read(
    backend: Backend, clock: FakeClock, sealer: Sealer
) -> None:
    call = scale_call()
    writer = await QueueStore.open(backend.target, clock=clock, sealer=sealer)
    try:
        await writer.journal.record(call, [secret_change(call)], allow(), complete=True)
    finally:
        await writer.close()
    reader = await QueueStore.open(backend.target, clock=clock)
    try:
        with pytest.raises(SealError, match="cannot be rolled back"):
            await reader.journal.find(call.id)
        assert (await reader.journal.view(call.id) or {})["tool"] == "k8s_scale"  # clear columns still show
    finally:
        await reader.close()
