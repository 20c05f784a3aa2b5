"""Client-side rate limits towards Palette: token buckets per endpoint class, a waiting
budget per request, and the fake Palette's own 429 budget as the server they protect."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeTime
from palette_support import admin, fake_app, palette_client
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import NotFound, RateLimited
from gateway.metrics import Metrics
from gateway.palette.client import PaletteLimits
from gateway.settings import Settings


def _limits(time: FakeTime, metrics: Metrics | None = None, **overrides: float) -> PaletteLimits:
    shape: dict[str, float] = {
        "rate": 2,
        "burst": 1,
        "profiles_rate": 10,
        "profiles_burst": 1,
        "wait_budget": 5,
    }
    shape.update(overrides)
    return PaletteLimits(
        rate=shape["rate"],
        burst=int(shape["burst"]),
        profiles_rate=shape["profiles_rate"],
        profiles_burst=int(shape["profiles_burst"]),
        wait_budget=shape["wait_budget"],
        clock=time.clock,
        sleep=time.sleep,
        metrics=metrics,
    )


def _count(metrics: Metrics, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_the_default_limits_stay_inside_palettes_documented_limits() -> None:
    # About 10 requests/s per IP, 50 for cluster profiles: a full burst plus one second of
    # refill never exceeds them in any one-second window.
    settings = Settings()
    assert settings.palette_rate_per_second + settings.palette_burst <= 10
    assert settings.palette_profiles_rate_per_second + settings.palette_profiles_burst <= 50
    assert settings.palette_rate_per_second > 0
    assert settings.palette_profiles_rate_per_second > 0


async def test_requests_are_spaced_by_their_endpoint_class_bucket() -> None:
    time = FakeTime()
    app = fake_app()
    async with palette_client(app, limits=_limits(time), sleep=time.sleep) as client:
        for _ in range(4):
            with pytest.raises(NotFound):
                await client.get_cluster("nope")
    assert time.slept == [0.5] * 3  # 2/s after a burst of 1


async def test_cluster_profiles_have_their_own_bucket() -> None:
    time = FakeTime()
    app = fake_app()
    async with palette_client(app, limits=_limits(time), sleep=time.sleep) as client:
        with pytest.raises(NotFound):
            await client.get_cluster("nope")  # takes the general bucket's only token
        await client.list_profiles({})
        await client.list_profiles({})
    assert time.slept == [0.1]  # the second profile listing waited for its own bucket only


async def test_a_request_that_would_wait_beyond_its_budget_fails_fast_and_is_not_sent() -> None:
    time = FakeTime()
    app = fake_app()
    metrics = Metrics()
    limits = _limits(time, metrics, rate=0.25, wait_budget=1)
    async with palette_client(app, limits=limits, sleep=time.sleep, metrics=metrics) as client:
        with pytest.raises(NotFound):
            await client.get_cluster("nope")
        with pytest.raises(RateLimited, match=r"^Palette rate limited, retry after 4 s") as refused:
            await client.get_cluster("nope")
    assert refused.value.retry_after == pytest.approx(4.0)
    assert time.slept == []
    assert len((await admin(app, "GET", "requests"))["requests"]) == 1
    assert _count(metrics, "gateway_backend_throttled_total", backend="palette", source="client") == 1


async def test_a_429_pauses_the_bucket_for_the_other_callers_too() -> None:
    time = FakeTime()
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 1, "status": 429, "retry_after": 2})
    limits = _limits(time, rate=100, burst=10, wait_budget=1)
    async with palette_client(app, limits=limits, sleep=time.sleep) as client:
        with pytest.raises(RateLimited, match="retry after 2 s"):
            await client.search_clusters({})
        # The next caller is not sent to find out for itself: the bucket is paused.
        with pytest.raises(RateLimited, match="retry after 2 s"):
            await client.get_cluster("any")
    assert len((await admin(app, "GET", "requests"))["requests"]) == 1
    assert time.slept == []


async def test_backend_requests_are_counted_by_operation_and_status() -> None:
    app = fake_app()
    metrics = Metrics()
    await admin(app, "POST", "throttle", {"count": 1, "status": 429, "retry_after": 0})
    async with palette_client(app, metrics=metrics) as client:
        await client.list_profiles({})
        with pytest.raises(NotFound):
            await client.get_cluster("nope")
    assert _count(metrics, "gateway_backend_requests_total", operation="list_profiles", status="429") == 1
    assert _count(metrics, "gateway_backend_requests_total", operation="list_profiles", status="200") == 1
    assert _count(metrics, "gateway_backend_requests_total", operation="get_cluster", status="404") == 1
    assert _count(metrics, "gateway_backend_throttled_total", backend="palette", source="server") == 1
    assert _count(metrics, "gateway_backend_request_duration_seconds_count", operation="get_cluster") == 1


async def test_the_client_buckets_keep_a_burst_inside_the_fakes_429_budget() -> None:
    # The fake answers 429 beyond 20 requests/s (its own token bucket). Forty concurrent
    # reads with the client's buckets at 16/s (burst 4) meet no 429; without client-side
    # limits the same burst does (so the first half proves something).
    app = fake_app(rate_limit=20.0)
    limited, unlimited = Metrics(), Metrics()
    limits = PaletteLimits(rate=16, burst=4, profiles_rate=16, profiles_burst=4, wait_budget=10)
    async with palette_client(app, limits=limits, metrics=limited) as client:
        await asyncio.gather(
            *(client.get_cluster("nope-" + str(i)) for i in range(40)), return_exceptions=True
        )
    assert _count(limited, "gateway_backend_requests_total", status="404") == 40
    assert _count(limited, "gateway_backend_requests_total", status="429") == 0
    await asyncio.sleep(1.1)  # the fake's budget refills
    async with palette_client(app, metrics=unlimited, max_retries=0) as client:
        await asyncio.gather(
            *(client.get_cluster("nope-" + str(i)) for i in range(40)), return_exceptions=True
        )
    assert _count(unlimited, "gateway_backend_requests_total", status="429") > 0
