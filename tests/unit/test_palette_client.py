"""The Palette client against the in-process fake: headers, paging, retries, errors, secrecy."""

from __future__ import annotations

import logging

import httpx
import pytest
from palette_support import API_KEY, Sleeps, admin, aws_body, fake_app, palette_client

from gateway.errors import BackendUnavailable, ConfigError, Conflict, Forbidden, NotFound, RateLimited
from gateway.local.fake_palette import FLEET_SIZE
from gateway.palette.client import PaletteClient, PaletteLimits, base_url_from


async def test_listing_follows_continue_beyond_the_first_page_of_50() -> None:
    app = fake_app()
    async with palette_client(app) as client:
        clusters = await client.search_clusters({})
    assert len(clusters) == FLEET_SIZE + 5
    assert len({c["metadata"]["uid"] for c in clusters}) == len(clusters)
    log = (await admin(app, "GET", "requests"))["requests"]
    assert [r["query"].get("continue") is not None for r in log] == [False, True]
    assert all(r["query"]["limit"] == "50" for r in log)


async def test_every_request_carries_the_api_key_and_project_headers() -> None:
    app = fake_app()
    async with palette_client(app) as client:
        await client.search_clusters({})
    log = (await admin(app, "GET", "requests"))["requests"]
    assert log
    assert all(r["api_key_present"] and r["project"] == "project-demo" for r in log)


async def test_projects_are_partitions() -> None:
    app = fake_app()
    async with palette_client(app, project="project-other") as client:
        assert await client.search_clusters({}) == []


async def test_429_is_retried_honouring_retry_after() -> None:
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 2, "status": 429, "retry_after": 1.5})
    sleeps = Sleeps()
    async with palette_client(app, sleep=sleeps) as client:
        clusters = await client.search_clusters({})
    assert len(clusters) == FLEET_SIZE + 5
    assert sleeps.delays == [1.5, 1.5]


async def test_a_retry_after_beyond_the_budget_fails_fast_saying_when_to_retry() -> None:
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 1, "status": 429, "retry_after": 3600})
    sleeps = Sleeps()
    async with palette_client(app, sleep=sleeps, limits=PaletteLimits.unlimited(wait_budget=5)) as client:
        with pytest.raises(RateLimited, match=r"rate limited, retry after 3600 s") as refused:
            await client.get_profile("any")
    assert refused.value.retry_after == 3600
    assert sleeps.delays == []  # nothing hangs
    assert len((await admin(app, "GET", "requests"))["requests"]) == 1


async def test_persistent_429_ends_in_rate_limited_after_bounded_retries() -> None:
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 10, "status": 429, "retry_after": 0})
    sleeps = Sleeps()
    async with palette_client(app, sleep=sleeps, max_retries=3) as client:
        with pytest.raises(RateLimited, match="retries exhausted"):
            await client.search_clusters({})
    assert len(sleeps.delays) == 3


async def test_5xx_on_a_read_is_retried_with_backoff() -> None:
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 1, "status": 503, "retry_after": -1})
    sleeps = Sleeps()
    async with palette_client(app, sleep=sleeps, backoff_base=0.5) as client:
        await client.list_profiles({})
    assert len(sleeps.delays) == 1
    assert 0 < sleeps.delays[0] <= 0.5  # full jitter over [0, base], no Retry-After to honour


async def test_create_is_never_retried() -> None:
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 1, "status": 503, "retry_after": 0})
    sleeps = Sleeps()
    async with palette_client(app, sleep=sleeps) as client:
        with pytest.raises(BackendUnavailable):
            await client.create_cluster("aws", {"metadata": {"name": "x"}, "spec": {}})
    assert sleeps.delays == []
    assert [r["method"] for r in (await admin(app, "GET", "requests"))["requests"]] == ["POST"]


async def test_v1error_bodies_become_typed_errors() -> None:
    app = fake_app()
    async with palette_client(app) as client:
        with pytest.raises(NotFound, match=r"404 ResourceNotFound.*cluster nope not found"):
            await client.get_cluster("nope")
    async with palette_client(app, api_key="wrong-key") as client:
        with pytest.raises(Forbidden, match="401"):
            await client.search_clusters({})


async def test_duplicate_cluster_name_is_a_conflict() -> None:
    app = fake_app()
    body = aws_body("prod-payments", [("workers", 1, "t3.large")])
    body["spec"]["cloudType"] = "aws"
    async with palette_client(app) as client:
        with pytest.raises(Conflict, match="already exists"):
            await client.validate_cluster("aws", body)


async def test_unreachable_palette_is_backend_unavailable_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sleeps = Sleeps()
    client = PaletteClient(
        base_url="http://127.0.0.1:9",
        api_key=API_KEY,
        project_uid=None,
        timeout=1.0,
        transport=httpx.MockTransport(refuse),
        sleep=sleeps,
    )
    async with client:
        with pytest.raises(BackendUnavailable, match="could not be reached") as info:
            await client.get_cluster("abc")
    assert len(sleeps.delays) == 3
    assert API_KEY not in str(info.value)
    assert API_KEY not in caplog.text


async def test_a_key_echoed_by_palette_is_scrubbed_from_the_error() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"code": "BadKey", "message": f"key {request.headers['apikey']} is bad"}
        )

    client = PaletteClient(
        base_url="http://127.0.0.1",
        api_key=API_KEY,
        project_uid=None,
        timeout=1.0,
        transport=httpx.MockTransport(echo),
    )
    async with client:
        with pytest.raises(Exception, match="<redacted>") as info:
            await client.get_cluster("abc")
    assert API_KEY not in str(info.value)


async def test_redirects_are_not_followed_so_the_key_stays_home() -> None:
    seen: list[str] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/steal"})

    client = PaletteClient(
        base_url="http://127.0.0.1",
        api_key=API_KEY,
        project_uid=None,
        timeout=1.0,
        transport=httpx.MockTransport(redirect),
    )
    async with client:
        with pytest.raises(BackendUnavailable, match="redirects are not followed"):
            await client.get_cluster("abc")
    assert seen == ["http://127.0.0.1/v1/spectroclusters/abc"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.spectrocloud.com", "https://api.spectrocloud.com"),
        ("https://api.spectrocloud.com/", "https://api.spectrocloud.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_palette_host_becomes_a_base_url(host: str, expected: str) -> None:
    assert base_url_from(host) == expected


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="https"):
        base_url_from("http://api.spectrocloud.com")


async def test_path_arguments_cannot_escape_their_segment() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})

    client = PaletteClient(
        base_url="http://127.0.0.1",
        api_key=API_KEY,
        project_uid=None,
        timeout=1.0,
        transport=httpx.MockTransport(record),
    )
    async with client:
        await client.get_cluster("../../v1/users")
    assert seen == ["/v1/spectroclusters/..%2F..%2Fv1%2Fusers"]


async def test_backoff_grows_exponentially_within_its_bound() -> None:
    app = fake_app()
    await admin(app, "POST", "throttle", {"count": 3, "status": 502, "retry_after": -1})
    sleeps = Sleeps()
    async with palette_client(app, sleep=sleeps, backoff_base=0.5, max_backoff=1.5, max_retries=3) as client:
        await client.list_profiles({})
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= min(1.5, 0.5 * 2**attempt)
