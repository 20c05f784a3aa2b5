"""The token bucket every backend client asks before a request."""

from __future__ import annotations

import pytest
from fakes import FakeTime

from gateway.errors import RateLimited
from gateway.ratelimit import TokenBucket


def _bucket(time: FakeTime, rate: float, burst: int) -> TokenBucket:
    return TokenBucket(rate, burst, name="Test API", clock=time.clock, sleep=time.sleep)


async def test_a_burst_passes_at_once_then_requests_are_spaced_at_the_rate() -> None:
    time = FakeTime()
    bucket = _bucket(time, rate=4, burst=3)
    for _ in range(5):
        await bucket.acquire(budget=10)
    assert time.slept == [0.25, 0.25]


async def test_concurrent_callers_queue_in_arrival_order_instead_of_all_waiting_the_same() -> None:
    time = FakeTime()
    bucket = _bucket(time, rate=10, burst=1)
    waits = [bucket.reserve(budget=10) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


async def test_a_wait_beyond_the_budget_is_refused_at_once_and_takes_no_token() -> None:
    time = FakeTime()
    bucket = _bucket(time, rate=1, burst=1)
    await bucket.acquire(budget=0.5)
    with pytest.raises(RateLimited, match=r"^Test API rate limited, retry after 1 s \(") as refused:
        await bucket.acquire(budget=0.5)
    assert refused.value.retry_after == pytest.approx(1.0)
    assert time.slept == []
    time.now += 1.0  # the refused caller took nothing: the next one finds a full token
    assert bucket.reserve(budget=0) == 0.0


async def test_a_pause_from_the_server_holds_every_caller_until_it_ends() -> None:
    time = FakeTime()
    bucket = _bucket(time, rate=100, burst=10)
    bucket.pause(3.0)
    assert bucket.reserve(budget=5) == pytest.approx(3.0)
    with pytest.raises(RateLimited, match="retry after 3 s"):
        bucket.reserve(budget=2)
    time.now += 3.0
    assert bucket.reserve(budget=0) == 0.0


async def test_a_zero_rate_admits_everything() -> None:
    bucket = TokenBucket(0, 1, name="unlimited")
    assert [bucket.reserve(budget=0) for _ in range(1000)] == [0.0] * 1000


def test_a_bucket_needs_a_sensible_shape() -> None:
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(1, 0, name="x")
