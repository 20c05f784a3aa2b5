"""The Palette ToolSpecs against the in-process fake: what policy sees, what executes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from palette_support import API_KEY, admin, aws_body, cluster_uid, fake_app, palette_client
from pydantic import SecretStr

from gateway.contracts import Decision, Principal
from gateway.errors import Conflict, Invalid, InvalidArguments
from gateway.palette.backend import PaletteBackend
from gateway.palette.client import PaletteClient
from gateway.palette.tools import build_specs, open_backend
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolSpec

PRINCIPAL = Principal(subject="alice", groups=("sre",), transport="stdio", authenticated=True)
EXPECTED = {
    "palette_list_clusters": "read",
    "palette_get_cluster": "read",
    "palette_cluster_events": "read",
    "palette_cluster_cost": "read",
    "palette_list_profiles": "read",
    "palette_get_profile": "read",
    "palette_list_packs": "read",
    "palette_diagnose_cluster": "read",
    "palette_compare_clusters": "read",
    "palette_recommend_profile": "read",
    "palette_validate_configuration": "read",
    "palette_create_cluster": "write",
    "palette_update_cluster_profiles": "write",
    "palette_delete_cluster": "delete",
}


class Checks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((tool, arguments))
        return {"outcome": "needs_approval", "reasons": [{"code": "PAL-001"}]}


def tools(client: PaletteClient, check: Checks | None = None) -> dict[str, ToolSpec[Any]]:
    return {t.name: t for t in build_specs(PaletteBackend(client, Settings(), check or Checks()))}


async def run(spec: ToolSpec[Any], arguments: dict[str, Any], prepared: list[Prepared] | None = None) -> Any:
    """prepare then execute, as the pipeline does after an allow."""
    args = spec.args.model_validate(arguments)
    prepared = prepared if prepared is not None else await spec.prepare(args)
    return await spec.execute(args, context(spec, args, prepared))


def context(spec: ToolSpec[Any], args: Any, prepared: list[Prepared]) -> ExecutionContext:
    call = spec.plan(args, prepared, PRINCIPAL)
    return ExecutionContext(call=call, decision=Decision(outcome="allow"))


async def test_the_backend_offers_exactly_the_fixed_tools_with_their_effects() -> None:
    async with palette_client(fake_app()) as client:
        specs = tools(client)
    assert {name: s.effect for name, s in specs.items()} == EXPECTED
    assert all(
        s.operation == s.name.removeprefix("palette_") and s.backend == "palette" for s in specs.values()
    )


async def test_without_palette_settings_the_backend_is_not_offered() -> None:
    async with open_backend(Settings(PALETTE_HOST=None, PALETTE_API_KEY=None), check=Checks()) as specs:
        assert specs == []


async def test_with_settings_the_factory_opens_one_client_and_yields_the_tools() -> None:
    settings = Settings(
        PALETTE_HOST="http://127.0.0.1",
        PALETTE_API_KEY=SecretStr(API_KEY),
        PALETTE_PROJECT_UID="project-demo",
    )
    async with open_backend(settings, check=Checks(), transport=httpx.ASGITransport(app=fake_app())) as specs:
        listing = await run(
            {s.name: s for s in specs}["palette_list_clusters"], {"environment": "production"}
        )
    assert sorted(r["name"] for r in listing["clusters"]) == ["prod-gpu-training", "prod-payments"]


async def test_list_clusters_pages_beyond_50_and_filters() -> None:
    async with palette_client(fake_app()) as client:
        specs = tools(client)
        everything = await run(specs["palette_list_clusters"], {})
        provisioning = await run(specs["palette_list_clusters"], {"state": "Provisioning"})
        named = await run(specs["palette_list_clusters"], {"name": "fleet-05"})
    assert everything["count"] == 61
    assert [r["name"] for r in provisioning["clusters"]] == ["dev-provisioning"]
    assert {r["name"] for r in named["clusters"]} == {f"fleet-05{i}" for i in range(6)}


async def test_cluster_reads_resolve_the_environment_from_the_cluster_tag() -> None:
    async with palette_client(fake_app()) as client:
        uid = await cluster_uid(client, "prod-payments")
        prepared = await tools(client)["palette_get_cluster"].prepare(
            tools(client)["palette_get_cluster"].args(uid=uid)
        )
    assert prepared[0].target.environment == "production"
    assert prepared[0].target.kind == "SpectroCluster"
    assert prepared[0].target.cluster == uid
    assert prepared[0].target.name == "prod-payments"


async def test_unknown_extra_arguments_are_refused() -> None:
    async with palette_client(fake_app()) as client:
        with pytest.raises(ValueError, match="extra"):
            tools(client)["palette_get_cluster"].args.model_validate({"uid": "a", "force": True})


async def test_create_prepare_gives_policy_the_validated_body_with_gpu_pools_and_node_counts() -> None:
    app = fake_app()
    body = aws_body(
        "ml-train", [("cp", 3, "m5.xlarge"), ("gpu", 8, "p4d.24xlarge")], environment="production"
    )
    async with palette_client(app) as client:
        spec = tools(client)["palette_create_cluster"]
        prepared = await spec.prepare(spec.args(cloud_type="aws", spec=body))
        assert len(await client.search_clusters({})) == 61
    obj = prepared[0].object
    assert obj is not None
    assert obj["spec"]["cloudType"] == "aws"
    assert sum(p["poolConfig"]["size"] for p in obj["spec"]["machinepoolconfig"]) == 11
    assert obj["spec"]["machinepoolconfig"][1]["cloudConfig"]["instanceType"] == "p4d.24xlarge"
    assert prepared[0].target.environment == "production"
    assert prepared[0].current is None
    paths = [r["path"] for r in (await admin(app, "GET", "requests"))["requests"]]
    assert "/v1/spectroclusters/aws/validate" in paths
    assert "/v1/spectroclusters/aws" not in paths


async def test_create_that_palette_rejects_fails_in_prepare_and_creates_nothing() -> None:
    app = fake_app()
    body = aws_body("bad-one", [("workers", 1, "m5.large")])
    body["spec"]["profiles"] = [{"uid": "doesnotexist"}]
    async with palette_client(app) as client:
        spec = tools(client)["palette_create_cluster"]
        with pytest.raises(Invalid, match="cluster profile doesnotexist not found"):
            await spec.prepare(spec.args(cloud_type="aws", spec=body))
        assert len(await client.search_clusters({})) == 61


async def test_malformed_create_body_is_refused_before_palette_is_asked() -> None:
    app = fake_app()
    body = aws_body("bad", [("workers", 2, "m5.large")])
    body["spec"]["machinepoolconfig"][0]["poolConfig"]["size"] = "2"
    async with palette_client(app) as client:
        spec = tools(client)["palette_create_cluster"]
        with pytest.raises(InvalidArguments, match=r"machinepoolconfig\.0\.poolConfig\.size"):
            await spec.prepare(spec.args(cloud_type="aws", spec=body))
    assert (await admin(app, "GET", "requests"))["requests"] == []


async def test_create_executes_exactly_the_judged_body() -> None:
    app = fake_app()
    body = aws_body("small-one", [("workers", 2, "t3.large")], environment="development")
    async with palette_client(app) as client:
        spec = tools(client)["palette_create_cluster"]
        created = await run(spec, {"cloud_type": "aws", "spec": body})
        cluster = await client.get_cluster(created["uid"])
        assert cluster["status"]["state"] == "Provisioning"
        other = aws_body("small-one", [("workers", 20, "t3.large")], environment="development")
        judged = await spec.prepare(
            spec.args(cloud_type="aws", spec=aws_body("x-two", [("w", 1, "t3.large")]))
        )
        with pytest.raises(Conflict, match="differs"):
            await run(spec, {"cloud_type": "aws", "spec": other}, judged)


async def test_delete_shows_policy_the_live_cluster_and_refuses_if_its_environment_changed() -> None:
    app = fake_app()
    async with palette_client(app) as client:
        uid = await cluster_uid(client, "prod-payments")
        spec = tools(client)["palette_delete_cluster"]
        prepared = await spec.prepare(spec.args(uid=uid))
        assert prepared[0].current is not None
        assert prepared[0].current["metadata"]["labels"]["environment"] == "production"
        packs = [p for t in prepared[0].current["spec"]["clusterProfileTemplates"] for p in t["packs"]]
        assert {p["values"][:7] for p in packs} == {"sha256:"}
        assert "auditLog" not in str(prepared[0].current)
        assert prepared[0].target.environment == "production"
        stale = [Prepared(target=prepared[0].target.model_copy(update={"environment": "development"}))]
        with pytest.raises(Conflict, match="environment tag changed"):
            await run(spec, {"uid": uid}, stale)
        assert (await client.get_cluster(uid))["status"]["state"] == "Running"
        result = await run(spec, {"uid": uid}, prepared)
        assert result == {"uid": uid, "name": "prod-payments", "deletion_requested": True}
        assert (await client.get_cluster(uid))["status"]["state"] == "Deleting"


async def test_profile_update_digests_pack_values_for_policy_and_patches_the_cluster() -> None:
    app = fake_app()
    async with palette_client(app) as client:
        uid = await cluster_uid(client, "staging-web")
        profile = next(p for p in await client.list_profiles({}) if p["metadata"]["name"] == "data-services")
        spec = tools(client)["palette_update_cluster_profiles"]
        arguments = {
            "uid": uid,
            "profiles": [
                {
                    "uid": profile["metadata"]["uid"],
                    "pack_values": [{"name": "redis", "values": "password: hunter2\n"}],
                }
            ],
        }
        prepared = await spec.prepare(spec.args.model_validate(arguments))
        assert "hunter2" not in str(prepared[0].object)
        assert prepared[0].object is not None
        assert prepared[0].object["profiles"][0]["packValues"][0]["values"].startswith("sha256:")
        await run(spec, arguments, prepared)
        cluster = await client.get_cluster(uid)
    names = [t["name"] for t in cluster["spec"]["clusterProfileTemplates"]]
    assert names == ["aws-base-k8s-1.29", "observability", "data-services"]


async def test_validate_configuration_asks_policy_about_a_create_and_runs_nothing() -> None:
    app = fake_app()
    checks = Checks()
    body = aws_body("what-if", [("gpu", 2, "g5.xlarge")], environment="staging")
    body["spec"]["cloudType"] = "aws"
    async with palette_client(app) as client:
        result = await run(tools(client, checks)["palette_validate_configuration"], {"cluster_spec": body})
        assert len(await client.search_clusters({})) == 61
    assert checks.calls == [("palette_create_cluster", {"cloud_type": "aws", "spec": body})]
    assert result["executed"] is False
    assert result["verdict"]["outcome"] == "needs_approval"


async def test_validate_configuration_needs_a_cloud_type() -> None:
    async with palette_client(fake_app()) as client:
        spec = tools(client)["palette_validate_configuration"]
        with pytest.raises(InvalidArguments, match="cloud_type"):
            await spec.prepare(spec.args(cluster_spec=aws_body("x", [("w", 1, "t3.large")])))


async def test_diagnose_scores_an_unhealthy_cluster_with_its_findings() -> None:
    async with palette_client(fake_app()) as client:
        specs = tools(client)
        sick = await run(specs["palette_diagnose_cluster"], {"uid": await cluster_uid(client, "staging-web")})
        fine = await run(
            specs["palette_diagnose_cluster"], {"uid": await cluster_uid(client, "prod-payments")}
        )
    assert fine["score"] == 100
    assert fine["verdict"] == "healthy"
    assert sick["score"] < 50
    assert sick["verdict"] == "critical"
    sources = {f["source"] for f in sick["findings"]}
    assert sources == {"health", "conditions", "machine_pools", "events"}
    assert any("NodeNotReady" in f["message"] for f in sick["findings"])


async def test_compare_reports_profile_pack_version_and_value_drift() -> None:
    async with palette_client(fake_app()) as client:
        a, b = await cluster_uid(client, "prod-payments"), await cluster_uid(client, "staging-web")
        spec = tools(client)["palette_compare_clusters"]
        prepared = await spec.prepare(spec.args(uid_a=a, uid_b=b))
        report = await run(spec, {"uid_a": a, "uid_b": b}, prepared)
    assert [p.target.name for p in prepared] == ["prod-payments", "staging-web"]
    assert report["in_sync"] is False
    assert report["profiles"]["only_in_a"] == ["aws-base-k8s-1.30"]
    assert report["profiles"]["only_in_b"] == ["aws-base-k8s-1.29"]
    drift = {d["pack"]: (d["a"], d["b"]) for d in report["packs"]["version_drift"]}
    assert drift["kubernetes"] == ("1.30.4", "1.29.8")
    values = {d["pack"]: d for d in report["packs"]["value_drift"]}
    assert values["kubernetes"]["changed_keys"] == ["apiServer"]
    assert "auditLog" not in str(report)


async def test_recommend_ranks_the_gpu_profile_first_for_ml_training() -> None:
    async with palette_client(fake_app()) as client:
        spec = tools(client)["palette_recommend_profile"]
        first = await run(
            spec, {"workload_description": "ML training on GPUs with CUDA", "cloud_type": "aws"}
        )
        again = await run(
            spec, {"workload_description": "ML training on GPUs with CUDA", "cloud_type": "aws"}
        )
    assert first == again
    assert first["profiles"][0]["name"] == "gpu-ml-training"
    assert any("gpu" in r for r in first["profiles"][0]["reasons"])
    assert first["packs"][0]["name"] == "nvidia-gpu-operator"


async def test_events_cost_profiles_and_packs_read_through() -> None:
    async with palette_client(fake_app()) as client:
        specs = tools(client)
        uid = await cluster_uid(client, "prod-gpu-training")
        warnings = await run(
            specs["palette_cluster_events"],
            {"uid": await cluster_uid(client, "staging-web"), "severity": "Warning"},
        )
        cost = await run(specs["palette_cluster_cost"], {"uid": uid, "period": "day"})
        profiles = await run(specs["palette_list_profiles"], {"cloud_type": "vsphere"})
        packs = await run(specs["palette_list_packs"], {"layer": "cni"})
        profile = await run(specs["palette_get_profile"], {"uid": profiles["profiles"][0]["uid"]})
    assert [e["reason"] for e in warnings["events"]] == ["NodeNotReady", "BackOff"]
    assert cost["total"] > 3000  # four p4d.24xlarge for a day
    assert {p["name"] for p in profiles["profiles"]} == {"observability", "data-services", "vsphere-edge-k8s"}
    assert {p["name"] for p in packs["packs"]} == {"cni-calico", "cni-cilium"}
    assert profile["kind"] == "ClusterProfile"
