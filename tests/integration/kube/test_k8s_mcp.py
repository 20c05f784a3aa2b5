"""The Kubernetes tools end to end: MCP client → gateway → real OPA with the project's
bundle → real kube-apiserver. What policy says is what happens to the cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_support import approve_and_wait, connected, reply_body, reply_text
from kubernetes import client as k8s

from gateway.contracts import Principal
from gateway.kubernetes.tools import TOOL_NAMES
from gateway.local.opa import OpaServer
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)


@pytest.fixture
def settings(kube_settings: Settings, kube_seeded: Any, opa_server: OpaServer, tmp_path: Path) -> Settings:
    return kube_settings.model_copy(
        update={
            "opa_url": opa_server.url,
            "db_path": tmp_path / "gateway.db",
            "subject": "alice",
            "groups": ("sre",),
        }
    )


def _compliant_deployment(
    namespace: str, name: str = "shop", image: str = "registry.example.com/shop/web:2.1.0"
) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 10001}}
      containers:
      - name: web
        image: {image}
        securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
        resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{cpu: 200m, memory: 256Mi}}}}
"""


async def test_every_kubernetes_tool_is_served_with_a_described_schema(settings: Settings) -> None:
    async with connected(settings) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        assert set(TOOL_NAMES) <= set(tools)
        scale = tools["k8s_scale"]
        assert set(scale.input_schema["required"]) == {"kind", "name", "namespace", "replicas"}
        assert scale.input_schema["properties"]["replicas"]["description"] == "Desired number of replicas."
        # Every tool but k8s_clusters names its cluster: a kubeconfig context, the default filled in.
        cluster = scale.input_schema["properties"]["cluster"]
        assert (cluster["enum"], cluster["default"]) == (["sandbox", "sandbox-restricted"], "sandbox")
        assert "cluster" not in tools["k8s_clusters"].input_schema.get("properties", {})
        assert tools["k8s_delete"].annotations is not None
        assert tools["k8s_delete"].annotations.destructive_hint is True
        assert tools["k8s_get"].annotations is not None
        assert tools["k8s_get"].annotations.read_only_hint is True


async def test_reading_a_secret_returns_its_keys_but_never_its_values(settings: Settings) -> None:
    async with connected(settings) as mcp:
        result = await mcp.call_tool(
            "k8s_get", {"kind": "secret", "name": "postgres-credentials", "namespace": "payments"}
        )
        assert not result.is_error, reply_text(result)
        body = reply_body(result)
        assert body["data"] == {"POSTGRES_PASSWORD": "<redacted>", "POSTGRES_USER": "<redacted>"}
        assert "sandbox-only-not-a-real-password" not in str(result.model_dump())


async def test_listing_secrets_redacts_every_item(settings: Settings) -> None:
    async with connected(settings) as mcp:
        result = await mcp.call_tool("k8s_list", {"kind": "secrets", "namespace": "payments"})
        assert not result.is_error, reply_text(result)
        items = reply_body(result)["items"]
        assert items
        assert all(set(i["data"].values()) == {"<redacted>"} for i in items if "data" in i)


async def test_a_compliant_apply_in_development_is_allowed_and_written(
    settings: Settings, kube_admin: Any, kube_namespace: str
) -> None:
    async with connected(settings) as mcp:
        result = await mcp.call_tool("k8s_apply", {"manifest": _compliant_deployment(kube_namespace)})
        assert not result.is_error, reply_text(result)
        assert reply_body(result)["applied"][0]["name"] == "shop"
        live = k8s.AppsV1Api(kube_admin).read_namespaced_deployment("shop", kube_namespace)
        assert "policy-gateway" in {f.manager for f in live.metadata.managed_fields}


async def test_a_privileged_container_is_denied_and_nothing_is_written(
    settings: Settings, kube_admin: Any, kube_namespace: str
) -> None:
    async with connected(settings) as mcp:
        manifest = _compliant_deployment(kube_namespace, name="root").replace(
            "allowPrivilegeEscalation: false", "privileged: true"
        )
        result = await mcp.call_tool("k8s_apply", {"manifest": manifest})
        assert result.is_error
        assert reply_body(result)["outcome"] == "deny"
        assert "privileged" in reply_text(result)
        names = [
            d.metadata.name
            for d in k8s.AppsV1Api(kube_admin).list_namespaced_deployment(kube_namespace).items
        ]
        assert "root" not in names


@pytest.fixture
def production_shop(kube_admin: Any) -> Iterator[str]:
    """A namespace labelled environment=production with a compliant Deployment ``shop``
    (2 replicas), written behind the gateway's back; the seeded objects stay untouched."""
    name = f"prod-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespace({"metadata": {"name": name, "labels": {"environment": "production"}}})
    body = yaml.safe_load(_compliant_deployment(name))
    k8s.AppsV1Api(kube_admin).create_namespaced_deployment(name, body)
    yield name
    core.delete_namespace(name)


async def test_scaling_in_production_waits_for_another_human_and_then_runs_exactly_once(
    settings: Settings, kube_admin: Any, production_shop: str
) -> None:
    apps = k8s.AppsV1Api(kube_admin)
    arguments = {"kind": "deploy", "name": "shop", "namespace": production_shop, "replicas": 5}
    async with connected(settings) as mcp:
        result = await mcp.call_tool("k8s_scale", arguments)
        body = reply_body(result)
        assert body["outcome"] == "needs_approval", reply_text(result)
        assert "writes to production" in reply_text(result)
        assert apps.read_namespaced_deployment("shop", production_shop).spec.replicas == 2

        state = await approve_and_wait(mcp, settings, body["action_id"], BOB)
    assert state["state"] == "succeeded", state
    assert apps.read_namespaced_deployment("shop", production_shop).spec.replicas == 5


async def test_an_unknown_kind_is_a_clear_error_for_the_model_and_is_audited(settings: Settings) -> None:
    async with connected(settings) as mcp:
        result = await mcp.call_tool("k8s_list", {"kind": "deploymnt", "namespace": "dev"})
    assert result.is_error
    assert "no kind named 'deploymnt'" in reply_text(result)
    assert "Deployment" in reply_text(result)
    store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
    try:
        events = await store.audit.recent(limit=10)
    finally:
        await store.close()
    assert [(e.kind, e.tool) for e in events] == [("rejected_request", "k8s_list")]


async def test_kubernetes_errors_reach_the_model_as_short_messages(settings: Settings) -> None:
    async with connected(settings) as mcp:
        result = await mcp.call_tool("k8s_get", {"kind": "deploy", "name": "missing", "namespace": "dev"})
        assert result.is_error
        assert 'deployments.apps "missing" not found' in reply_text(result)
        assert "Traceback" not in reply_text(result)
        assert "HTTP response" not in reply_text(result)


async def test_diagnose_through_the_gateway_reports_a_score(settings: Settings) -> None:
    async with connected(settings) as mcp:
        result = await mcp.call_tool("k8s_diagnose", {"namespace": "dev"})
        assert not result.is_error, reply_text(result)
        assert 0 <= reply_body(result)["score"] < 100
