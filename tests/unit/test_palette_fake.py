"""The fake Palette API speaks the real API: every request the client sends and every
response the fake returns is checked against the spec's definitions."""

from __future__ import annotations

import httpx
import pytest
from palette_support import API_KEY, admin, aws_body, cluster_uid, fake_app, palette_client

from gateway.errors import Invalid
from gateway.local.palette_spec import CLIENT_OPERATIONS, SpecValidator
from gateway.palette.client import PaletteClient


async def _exercise_every_endpoint(client: PaletteClient) -> None:
    clusters = await client.search_clusters({"sort": [{"field": "clusterName", "order": "asc"}]})
    uid = clusters[0]["metadata"]["uid"]
    await client.get_cluster(uid)
    await client.cluster_overview(uid)
    await client.cluster_events(uid)
    await client.cluster_cost(
        uid, start="2026-01-01T00:00:00.000Z", end="2026-01-08T00:00:00.000Z", period_minutes=1440
    )
    profiles = await client.list_profiles({"filter": {"environment": ["aws"]}})
    await client.get_profile(profiles[0]["metadata"]["uid"])
    await client.search_packs({"filter": {"layer": ["k8s"], "name": {"contains": "kube"}}})
    body = aws_body("new-one", [("workers", 3, "m5.large")], environment="development")
    body["spec"]["cloudType"] = "aws"
    body["spec"]["profiles"] = [{"uid": profiles[0]["metadata"]["uid"]}]
    assert (await client.validate_cluster("aws", body))["machinePools"]["results"][0]["errors"] == []
    new_uid = await client.create_cluster("aws", body)
    await client.patch_cluster_profiles(
        new_uid,
        {
            "profiles": [
                {"uid": profiles[-1]["metadata"]["uid"], "packValues": [{"name": "x", "values": "a: 1"}]}
            ]
        },
    )
    await client.delete_cluster(new_uid)


async def test_fake_responses_and_client_requests_match_the_palette_spec() -> None:
    app = fake_app()
    async with palette_client(app) as client:
        await _exercise_every_endpoint(client)
    requests = (await admin(app, "GET", "requests"))["requests"]
    assert len(requests) >= 12
    assert (await admin(app, "GET", "violations"))["violations"] == []


async def test_the_spec_check_catches_a_body_that_drifts_from_the_spec() -> None:
    app = fake_app()
    bad = aws_body("drifted", [("workers", 3, "m5.large")])
    bad["spec"]["machinepoolconfig"][0]["poolConfig"]["size"] = "three"
    bad["spec"]["cloudType"] = "aws"
    async with palette_client(app) as client:
        with pytest.raises(Invalid, match="does not match v1SpectroAwsClusterEntity"):
            await client.validate_cluster("aws", {**bad, "metadata": {"name": "drifted", "labels": {"a": 1}}})
    violations = (await admin(app, "GET", "violations"))["violations"]
    assert any("poolConfig/size" in v and "'three' is not of type 'integer'" in v for v in violations)
    assert any("metadata/labels/a" in v for v in violations)


def test_the_validator_checks_error_bodies_against_v1error() -> None:
    validator = SpecValidator()
    assert validator.errors("v1Error", {"code": "X", "message": "m"}) == []
    assert validator.errors("v1Error", {"code": 5}) != []


def test_every_path_the_client_uses_exists_in_the_spec() -> None:
    validator = SpecValidator()
    for path, method in CLIENT_OPERATIONS:
        assert validator.operation(path, method)["operationId"]


async def test_requests_without_the_api_key_get_401_v1error() -> None:
    app = fake_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        response = await http.post("/v1/dashboard/spectroclusters/search", json={})
    assert response.status_code == 401
    assert set(response.json()) >= {"code", "message"}


async def test_a_forged_continue_token_is_a_400() -> None:
    app = fake_app()
    headers = {"ApiKey": API_KEY, "ProjectUid": "project-demo"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        response = await http.post(
            "/v1/dashboard/spectroclusters/search", params={"continue": "!!"}, json={}, headers=headers
        )
    assert response.status_code == 400


async def test_rate_budget_answers_429_with_retry_after() -> None:
    app = fake_app(rate_limit=2.0)
    headers = {"ApiKey": API_KEY, "ProjectUid": "project-demo"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        statuses = [(await http.get("/v1/clusterprofiles/x", headers=headers)) for _ in range(4)]
    codes = [r.status_code for r in statuses]
    assert codes[0] == 404  # within the budget: answered
    assert 429 in codes
    assert next(r for r in statuses if r.status_code == 429).headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("name", "state", "health"),
    [
        ("prod-payments", "Running", "Healthy"),
        ("staging-web", "Running", "UnHealthy"),
        ("dev-provisioning", "Provisioning", "Unknown"),
        ("old-sandbox", "Deleting", "Unknown"),
    ],
)
async def test_seeded_clusters_cover_every_state(name: str, state: str, health: str) -> None:
    async with palette_client(fake_app()) as client:
        overview = await client.cluster_overview(await cluster_uid(client, name))
    assert overview["status"]["state"] == state
    assert overview["status"]["health"]["state"] == health
