"""``QueueStore.count_by_state``: the queue depth ``/metrics`` reports."""

from __future__ import annotations

from queue_support import ALICE, BOB, FakeClock, needs_approval, scale_call
from storage_fixtures import Backend

from gateway.queue import QueueStore


async def test_counts_actions_by_their_effective_state(backend: Backend) -> None:
    clock = FakeClock()
    store = await QueueStore.open(backend.target, clock=clock)
    try:
        assert await store.count_by_state() == {}
        await store.park(scale_call(replicas=3), needs_approval(ttl_seconds=900), ALICE)
        await store.park(scale_call(replicas=4), needs_approval(ttl_seconds=900), ALICE)
        short = await store.park(scale_call(replicas=5), needs_approval(ttl_seconds=60), ALICE)
        denied = await store.park(scale_call(replicas=6), needs_approval(ttl_seconds=900), ALICE)
        await store.deny(denied.id, BOB, "not now")
        assert await store.count_by_state() == {"pending": 3, "denied": 1}
        clock.advance(120)
        # Expiry applies on read, before any sweep has written it.
        assert await store.count_by_state() == {"pending": 2, "expired": 1, "denied": 1}
        assert (await store.get(short.id)).state.value == "expired"
    finally:
        await store.close()
