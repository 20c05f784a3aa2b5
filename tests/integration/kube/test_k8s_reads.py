"""Read tools against the living sandbox: selectors, paging, discovery, environment, logs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kube_support import ToolRunner, allow_with
from kubernetes import client as k8s

from gateway.errors import InvalidArguments, NotFound

pytestmark = [pytest.mark.integration, pytest.mark.kube]


def _configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


async def test_list_filters_by_label_selector(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespaced_config_map(kube_namespace, _configmap("blue", app="shop", tier="web"))
    core.create_namespaced_config_map(kube_namespace, _configmap("green", app="shop", tier="db"))
    core.create_namespaced_config_map(kube_namespace, _configmap("other", app="blog"))

    call = await kube_tools.plan(
        "k8s_list", kind="cm", namespace=kube_namespace, label_selector="app=shop,tier!=db"
    )
    result = await kube_tools.execute(call)

    assert [i["metadata"]["name"] for i in result["items"]] == ["blue"]
    assert result["items"][0]["kind"] == "ConfigMap"
    assert "managedFields" not in result["items"][0]["metadata"]
    target = call.actions[0].target
    assert (target.kind, target.label_selector, target.all_namespaces) == (
        "ConfigMap",
        "app=shop,tier!=db",
        False,
    )


async def test_list_pages_with_a_continue_token(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_admin)
    for i in range(5):
        core.create_namespaced_config_map(kube_namespace, _configmap(f"cm-{i}", page="yes"))

    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = await kube_tools.call(
            "k8s_list", kind="configmaps", namespace=kube_namespace, label_selector="page=yes", limit=2,
            continue_token=token,
        )  # fmt: skip
        pages += 1
        assert page["count"] == len(page["items"]) <= 2
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["continue"]
        if token is None:
            break
    assert pages == 3
    assert names == [f"cm-{i}" for i in range(5)]


async def test_listing_a_namespaced_kind_without_namespace_targets_all_namespaces(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    call = await kube_tools.plan("k8s_list", kind="deploy")
    target = call.actions[0].target
    assert (target.namespace, target.all_namespaces, target.environment) == (None, True, None)
    result = await kube_tools.execute(call)
    assert {("dev", "web"), ("payments", "api")} <= {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in result["items"]
    }


@pytest.mark.parametrize("kind", ["deploy", "deployments", "Deployment", "deployment", "deployments.apps"])
async def test_kinds_resolve_by_short_name_plural_and_group(
    kube_tools: ToolRunner, kube_seeded: Any, kind: str
) -> None:
    call = await kube_tools.plan("k8s_get", kind=kind, name="api", namespace="payments")
    target = call.actions[0].target
    assert (target.api_version, target.kind, target.name) == ("apps/v1", "Deployment", "api")
    obj = await kube_tools.execute(call)
    # Identity, not state: other suites share the seeded sandbox.
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]) == (
        "apps/v1",
        "Deployment",
        "payments",
        "api",
    )


async def test_target_environment_comes_from_the_namespace_label(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    prod = await kube_tools.plan("k8s_get", kind="sts", name="postgres", namespace="payments")
    dev = await kube_tools.plan("k8s_list", kind="po", namespace="dev")
    ns = await kube_tools.plan("k8s_get", kind="ns", name="payments")
    assert prod.actions[0].target.environment == "production"
    assert prod.actions[0].target.cluster == "sandbox"
    assert dev.actions[0].target.environment == "development"
    assert (ns.actions[0].target.namespace, ns.actions[0].target.environment) == (None, "production")


async def test_unknown_kind_is_refused_with_close_matches(kube_tools: ToolRunner) -> None:
    with pytest.raises(InvalidArguments, match=r"no kind named 'deploymnt'.*Deployment"):
        await kube_tools.plan("k8s_get", kind="deploymnt", name="x", namespace="dev")


async def test_namespaced_get_without_namespace_is_refused(kube_tools: ToolRunner) -> None:
    with pytest.raises(InvalidArguments, match="Deployment is namespaced"):
        await kube_tools.plan("k8s_get", kind="deploy", name="api")


async def test_missing_object_is_not_found_with_the_api_message(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    call = await kube_tools.plan("k8s_get", kind="svc", name="nope", namespace="dev")
    with pytest.raises(NotFound) as caught:
        await kube_tools.execute(call)
    assert str(caught.value) == 'services "nope" not found'


async def test_custom_resource_is_served_once_its_crd_exists(
    kube_tools: ToolRunner, kube_namespace: str
) -> None:
    crd = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"""
    with pytest.raises(InvalidArguments):
        await kube_tools.plan("k8s_list", kind="wdg", namespace=kube_namespace)
    await kube_tools.call("k8s_apply", manifest=crd)
    widget = (
        f"apiVersion: example.com/v1\nkind: Widget\n"
        f"metadata: {{name: w1, namespace: {kube_namespace}}}\nspec: {{size: 3}}\n"
    )
    for _ in range(100):  # the CRD is served a moment after it is established
        try:
            await kube_tools.call("k8s_apply", manifest=widget)
            break
        except (InvalidArguments, NotFound):
            await asyncio.sleep(0.1)

    got = await kube_tools.call("k8s_get", kind="wdg", name="w1", namespace=kube_namespace)
    listed = await kube_tools.call("k8s_list", kind="widgets.example.com", namespace=kube_namespace)

    assert (got["kind"], got["spec"]["size"]) == ("Widget", 3)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]


async def test_events_are_newest_first_and_filtered_by_object(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_admin)
    for i, (name, stamp) in enumerate([("a", "2026-01-01T10:00:00Z"), ("b", "2026-01-01T12:00:00Z")]):
        core.create_namespaced_event(
            kube_namespace,
            {
                "metadata": {"name": f"ev-{i}"},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": kube_namespace},
                "type": "Warning",
                "reason": f"Reason{i}",
                "message": f"about {name}",
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
            },
        )

    everything = await kube_tools.call("k8s_events", namespace=kube_namespace)
    only_b = await kube_tools.call("k8s_events", namespace=kube_namespace, kind="Pod", name="b")

    assert [e["object"]["name"] for e in everything["items"]] == ["b", "a"]
    assert [e["reason"] for e in only_b["items"]] == ["Reason1"]


async def test_nodes_report_readiness_and_capacity(kube_tools: ToolRunner, kube_seeded: Any) -> None:
    result = await kube_tools.call("k8s_nodes")
    node = next(n for n in result["items"] if n["name"] == "sandbox-node-1")
    assert node["ready"] is True
    assert node["roles"] == ["worker"]
    assert node["capacity"]["cpu"] == "8"


async def test_cluster_info_names_the_cluster_and_namespace_environments(
    kube_tools: ToolRunner, kube_seeded: Any, kube_admin: Any
) -> None:
    info = await kube_tools.call("k8s_cluster_info")
    assert info["cluster"] == "sandbox"
    assert info["version"] == "v1.30.14"
    assert {"name": "payments", "environment": "production"} in info["namespaces"]
    assert info["metrics_available"] is False
    nodes = k8s.CoreV1Api(kube_admin).list_node().items
    assert info["node_count"] == len(nodes) >= 3  # counted from one item and the server's remainder


def _pod_of(kube_admin: Any, namespace: str, app: str) -> str:
    pods = k8s.CoreV1Api(kube_admin).list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return str(pods[0].metadata.name)


async def test_logs_come_from_the_simulated_kubelet_through_the_api_server(
    kube_tools: ToolRunner, kube_seeded: Any, kube_admin: Any
) -> None:
    # The API server proxies pods/log to the node's kubelet endpoint: kwok, over TLS it verifies.
    worker = _pod_of(kube_admin, "dev", "worker")
    result = await kube_tools.call("k8s_logs", pod=worker, namespace="dev", tail_lines=2)
    assert result["lines"] == ["ERROR giving up after 3 attempts", "panic: queue backend unavailable"]
    assert (result["line_count"], result["capped_by_policy"]) == (2, False)

    web = await kube_tools.call("k8s_logs", pod=_pod_of(kube_admin, "dev", "web"), namespace="dev")
    assert any('"GET /healthz HTTP/1.1" 200' in line for line in web["lines"])


async def test_policy_bounds_the_log_lines_returned(
    kube_tools: ToolRunner, kube_seeded: Any, kube_admin: Any
) -> None:
    worker = _pod_of(kube_admin, "dev", "worker")
    call = await kube_tools.plan("k8s_logs", pod=worker, namespace="dev", tail_lines=100)
    result = await kube_tools.execute(call, allow_with(max_log_lines=1))
    assert result["lines"] == ["panic: queue backend unavailable"]
    assert (result["max_lines"], result["capped_by_policy"]) == (1, True)


async def test_logs_of_a_missing_pod_fail_as_a_clean_backend_error(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    call = await kube_tools.plan("k8s_logs", pod="web-6f7b9d-q8r2m", namespace="dev", tail_lines=10)
    assert call.actions[0].target.kind == "Pod"
    with pytest.raises(NotFound) as caught:
        await kube_tools.execute(call, allow_with(max_log_lines=5))
    assert 'pods "web-6f7b9d-q8r2m" not found' in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert "HTTP response headers" not in str(caught.value)


async def test_reading_a_secret_never_returns_the_last_applied_manifest(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    k8s.CoreV1Api(kube_admin).create_namespaced_secret(
        kube_namespace,
        {
            "metadata": {
                "name": "creds",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"pw":"hunter2"}}'
                },
            },
            "stringData": {"pw": "hunter2"},
        },
    )
    secret = await kube_tools.call("k8s_get", kind="secret", name="creds", namespace=kube_namespace)
    annotation = secret["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert annotation.startswith("sha256:")
    assert "hunter2" not in str(secret["metadata"])
