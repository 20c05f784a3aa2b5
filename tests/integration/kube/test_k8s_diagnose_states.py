"""``k8s_diagnose`` on real states: each one is reached by the real scheduler, controllers
or kwok's simulated kubelet, and the finding names the object and the cause."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kube_support import ToolRunner, eventually
from kubernetes import client as k8s

from gateway.local.kwok import SIMULATE_ANNOTATION
from gateway.local.sandbox_seed import node_object

pytestmark = [pytest.mark.integration, pytest.mark.kube]

JSON = dict[str, Any]


def _deployment(
    name: str, *, simulate: str | None = None, cpu: str = "10m", memory_limit: str = "64Mi"
) -> JSON:
    template_meta: JSON = {"labels": {"app": name}}
    if simulate:
        template_meta["annotations"] = {SIMULATE_ANNOTATION: simulate}
    container = {
        "name": name,
        "image": f"registry.example.com/states/{name}:1.0",
        "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}, "limits": {"memory": memory_limit}},
    }
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template_meta, "spec": {"containers": [container]}},
        },
    }


async def _finding(tools: ToolRunner, namespace: str | None, reason: str, prefix: str) -> JSON:
    """Diagnose until a finding with ``reason`` about an object starting with ``prefix``."""

    async def found() -> JSON | None:
        report = await tools.call("k8s_diagnose", namespace=namespace)
        hits = [f for f in report["findings"] if f["reason"] == reason and f["object"].startswith(prefix)]
        return hits[0] if hits else None

    return await eventually(found, what=f"a {reason} finding about {prefix}")


async def test_an_unschedulable_pod_is_named_with_the_schedulers_reason(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    k8s.AppsV1Api(kube_admin).create_namespaced_deployment(kube_namespace, _deployment("huge", cpu="64"))

    finding = await _finding(kube_tools, kube_namespace, "Unschedulable", f"Pod/{kube_namespace}/huge-")

    assert finding["severity"] == "high"
    assert "nodes are available" in finding["message"]
    assert "Insufficient cpu" in finding["message"]
    pod = k8s.CoreV1Api(kube_admin).list_namespaced_pod(kube_namespace, label_selector="app=huge").items[0]
    assert pod.status.phase == "Pending"
    report = await kube_tools.call("k8s_diagnose", namespace=kube_namespace)
    workload = [f for f in report["findings"] if f["object"] == f"Deployment/{kube_namespace}/huge"]
    assert [f["message"] for f in workload] == ["0/1 replicas ready"]


async def test_a_crash_looping_container_is_named_with_its_exit(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    k8s.AppsV1Api(kube_admin).create_namespaced_deployment(
        kube_namespace, _deployment("crasher", simulate="crash-loop")
    )

    finding = await _finding(kube_tools, kube_namespace, "CrashLoopBackOff", f"Pod/{kube_namespace}/crasher-")

    assert finding["severity"] == "high"
    assert re.fullmatch(
        r"container crasher is crash-looping \(\d+ restarts?; last exit: Error, code 1\)", finding["message"]
    )


async def test_an_oom_killed_container_is_named_with_its_memory_limit(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    k8s.AppsV1Api(kube_admin).create_namespaced_deployment(
        kube_namespace, _deployment("hungry", simulate="oom-kill", memory_limit="32Mi")
    )

    finding = await _finding(kube_tools, kube_namespace, "OOMKilled", f"Pod/{kube_namespace}/hungry-")

    assert finding["severity"] == "medium"
    assert finding["message"].startswith("container hungry was OOMKilled at its memory limit 32Mi")


async def test_an_image_that_cannot_be_pulled_is_named(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    k8s.AppsV1Api(kube_admin).create_namespaced_deployment(
        kube_namespace, _deployment("typo", simulate="image-pull-backoff")
    )

    finding = await _finding(kube_tools, kube_namespace, "ImagePullBackOff", f"Pod/{kube_namespace}/typo-")

    assert finding["severity"] == "high"
    image = "registry.example.com/states/typo:1.0"
    assert (
        finding["message"]
        == f'container typo cannot start, ImagePullBackOff: Back-off pulling image "{image}"'
    )


@pytest.fixture
def sick_node(kube_admin: Any) -> Iterator[str]:
    """A simulated node whose kubelet reports NotReady (its network plugin is not ready)."""
    name = f"sick-{uuid.uuid4().hex[:6]}"
    body = node_object(name, annotations={SIMULATE_ANNOTATION: "not-ready"})
    core = k8s.CoreV1Api(kube_admin)
    core.create_node(body)
    yield name
    core.delete_node(name)


async def test_a_node_that_is_not_ready_is_named_with_the_kubelets_reason(
    kube_tools: ToolRunner, kube_admin: Any, sick_node: str
) -> None:
    finding = await _finding(kube_tools, None, "KubeletNotReady", f"Node/{sick_node}")

    assert finding["severity"] == "critical"
    assert finding["message"].startswith(
        "node is not Ready: KubeletNotReady: container runtime network not ready"
    )
    nodes = await kube_tools.call("k8s_nodes", limit=500)
    (view,) = [n for n in nodes["items"] if n["name"] == sick_node]
    assert view["ready"] is False
    assert view["problems"][0]["reason"] == "KubeletNotReady"

    # The node lifecycle controller reacts as it would to a real kubelet: no new pods there.
    async def tainted() -> Any:
        taints = k8s.CoreV1Api(kube_admin).read_node(sick_node).spec.taints or []
        return [t for t in taints if t.key == "node.kubernetes.io/not-ready"] or None

    assert (await eventually(tainted, what="the not-ready taint"))[0].effect in {"NoSchedule", "NoExecute"}
