"""The read tools at size: everything pages, nothing is listed whole.

``gateway sandbox seed --scale`` at a size that proves paging (300 pods over three
namespaces on six more simulated nodes, run by the controllers); ``make bench-k8s`` runs
the same tools at 5,000 pods and measures time and memory. Here the assertions are on
what was read: every list call carries a limit, no page is larger than it, and a scan
stops at its bound and says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from kube_support import ToolRunner
from kubernetes import client as k8s

from gateway.kubernetes.client import KubeClient
from gateway.kubernetes.tools import open_backend
from gateway.local.cluster import SandboxCluster
from gateway.local.seed_scale import SCALE_LABEL, ScalePlan, seed_scale
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

PLAN = ScalePlan.for_pods(300, nodes=6, namespaces=3)
SELECTOR = f"{SCALE_LABEL[0]}={SCALE_LABEL[1]}"


@pytest.fixture(scope="module")
def scale_seed(kube_cluster: SandboxCluster) -> ScalePlan:
    result = seed_scale(kube_cluster.kubeconfig_path, PLAN, wait_seconds=300)
    assert result["pods_running"] >= PLAN.pods
    return PLAN


@dataclass(frozen=True)
class ListCall:
    kind: str
    limit: int | None
    items: int


@pytest.fixture
def list_calls(monkeypatch: pytest.MonkeyPatch) -> list[ListCall]:
    """Every list the gateway's client makes, with its limit and the page it got."""
    calls: list[ListCall] = []
    original = KubeClient.list

    async def spy(self: KubeClient, kind: Any, namespace: str | None, **kwargs: Any) -> dict[str, Any]:
        page = await original(self, kind, namespace, **kwargs)
        calls.append(ListCall(kind.kind, kwargs.get("limit"), len(page.get("items") or [])))
        return page

    monkeypatch.setattr(KubeClient, "list", spy)
    return calls


async def _tools(settings: Settings, **scan: int) -> AsyncIterator[ToolRunner]:
    async with open_backend(settings.model_copy(update=scan)) as specs:
        yield ToolRunner(specs)


@pytest.fixture
async def small_pages(kube_settings: Settings) -> AsyncIterator[ToolRunner]:
    async for tools in _tools(kube_settings, kube_scan_page_size=50):
        yield tools


@pytest.fixture
async def tight_bound(kube_settings: Settings) -> AsyncIterator[ToolRunner]:
    async for tools in _tools(kube_settings, kube_scan_page_size=50, kube_scan_max_items=120):
        yield tools


async def test_k8s_list_pages_through_every_pod_a_bounded_page_at_a_time(
    scale_seed: ScalePlan, kube_tools: ToolRunner
) -> None:
    names: set[str] = set()
    token, pages = None, 0
    while True:
        page = await kube_tools.call("k8s_list", kind="pods", label_selector=SELECTOR, limit=100,
                                     continue_token=token)  # fmt: skip
        pages += 1
        assert page["count"] == len(page["items"]) <= 100
        names |= {f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in page["items"]}
        token = page["continue"]
        if token is None:
            break
    assert len(names) == scale_seed.pods
    assert pages == 3


async def test_diagnosing_the_whole_cluster_reads_every_kind_in_bounded_pages(
    scale_seed: ScalePlan, small_pages: ToolRunner, list_calls: list[ListCall]
) -> None:
    report = await small_pages.call("k8s_diagnose")

    assert report["truncated"] == []
    assert report["summary"]["pods"] >= scale_seed.pods + 7  # the scale seed and the sandbox seed
    assert report["summary"]["nodes"] >= scale_seed.nodes + 3
    assert all(call.limit is not None and call.items <= call.limit <= 50 for call in list_calls)
    pod_pages = [c for c in list_calls if c.kind == "Pod"]
    assert len(pod_pages) >= report["summary"]["pods"] // 50
    assert report["scan"]["pages"] == len(list_calls)
    assert len(report["findings"]) <= 100


async def test_a_scan_stops_at_its_bound_and_says_which_kind_it_cut(
    scale_seed: ScalePlan, tight_bound: ToolRunner, list_calls: list[ListCall]
) -> None:
    report = await tight_bound.call("k8s_diagnose")

    assert "Pod" in report["truncated"]
    assert report["summary"]["pods"] == 120
    assert [c.items for c in list_calls if c.kind == "Pod"] == [50, 50, 20]


async def test_diagnosing_one_namespace_reads_only_it(scale_seed: ScalePlan, kube_tools: ToolRunner) -> None:
    namespace = scale_seed.namespace_names()[0]
    report = await kube_tools.call("k8s_diagnose", namespace=namespace)
    assert report["summary"]["pods"] == 100
    assert report["summary"]["workloads"] == 10
    assert report["status"] == "healthy"


async def test_resource_usage_totals_every_namespace_of_the_large_seed(
    scale_seed: ScalePlan, small_pages: ToolRunner, list_calls: list[ListCall]
) -> None:
    usage = await small_pages.call("k8s_resource_usage")

    by_name = {ns["namespace"]: ns for ns in usage["namespaces"]}
    for namespace in scale_seed.namespace_names():
        # 100 pods of 10m / 16Mi each, from ten Deployments of ten replicas.
        assert by_name[namespace]["requests"] == {"cpu": "1", "memory": "1600Mi"}
        assert by_name[namespace]["workload_count"] == 10
    assert all(call.limit is not None and call.items <= call.limit <= 50 for call in list_calls)


async def test_k8s_nodes_pages_through_every_node(
    scale_seed: ScalePlan, kube_tools: ToolRunner, kube_admin: Any
) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = await kube_tools.call("k8s_nodes", limit=4, continue_token=token)
        assert page["count"] <= 4
        seen += [n["name"] for n in page["items"]]
        token = page["continue"]
        if token is None:
            break
    expected = {n.metadata.name for n in k8s.CoreV1Api(kube_admin).list_node().items}
    assert set(seen) == expected
    assert len(seen) == len(expected) >= scale_seed.nodes + 3
