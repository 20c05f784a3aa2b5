"""Requests and limits summed from pod templates, formatted like Kubernetes quantities."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.kubernetes.usage import UsageTally, format_quantity, live_usage, pod_resources, usage_report


def _container(requests: dict[str, str], limits: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": "c", "resources": {"requests": requests, "limits": limits or {}}}


def _workload(kind: str, name: str, replicas: int | None, *containers: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": list(containers)}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


@pytest.mark.parametrize(
    ("resource", "amount", "text"),
    [
        ("cpu", Decimal("1.5"), "1500m"),
        ("cpu", Decimal("2"), "2"),
        ("memory", Decimal(3 * 2**30), "3Gi"),
        ("memory", Decimal(1000), "1000"),
        ("ephemeral-storage", Decimal(512 * 2**20), "512Mi"),
        ("nvidia.com/gpu", Decimal(4), "4"),
    ],
)
def test_quantities_are_formatted_like_kubernetes(resource: str, amount: Decimal, text: str) -> None:
    assert format_quantity(resource, amount) == text


def test_a_pod_requests_the_larger_of_its_containers_and_its_largest_init_container() -> None:
    spec = {
        "containers": [_container({"cpu": "100m", "memory": "64Mi"}), _container({"cpu": "200m"})],
        "initContainers": [_container({"cpu": "1", "memory": "32Mi"})],
        "overhead": {"cpu": "10m"},
    }
    requests, _ = pod_resources(spec)
    assert requests == {"cpu": Decimal("1.010"), "memory": Decimal(64 * 2**20)}


def test_workloads_count_template_times_replicas_and_bare_pods_once() -> None:
    deploy = _workload(
        "Deployment", "api", 3, _container({"cpu": "250m", "memory": "256Mi"}, {"memory": "512Mi"})
    )
    default_one = _workload("StatefulSet", "db", None, _container({"cpu": "1"}))
    owned = {"metadata": {"name": "api-x", "namespace": "shop", "ownerReferences": [{"kind": "ReplicaSet"}]},
             "spec": {"containers": [_container({"cpu": "9"})]}}  # fmt: skip
    bare = {
        "metadata": {"name": "debug", "namespace": "shop"},
        "spec": {"containers": [_container({"cpu": "50m"})]},
    }

    report = usage_report([deploy, default_one], [owned, bare])

    (shop,) = report["namespaces"]
    assert shop["requests"] == {"cpu": "1800m", "memory": "768Mi"}
    assert shop["limits"] == {"memory": "1536Mi"}
    rows = {w["name"]: w for w in shop["workloads"]}
    assert set(rows) == {"api", "db", "debug"}
    assert rows["api"]["containers_without_limits"] == []
    assert rows["db"]["containers_without_limits"] == ["c"]
    assert report["totals"]["requests"]["cpu"] == "1800m"


def test_a_daemonset_without_status_has_unknown_replicas_and_adds_nothing() -> None:
    daemon = _workload("DaemonSet", "agent", None, _container({"cpu": "100m"}))
    (ns,) = usage_report([daemon], [])["namespaces"]
    assert ns["workloads"][0]["replicas"] is None
    assert ns["requests"] == {}


def test_live_usage_sums_pod_metrics_by_namespace() -> None:
    metrics = [
        {"metadata": {"namespace": "a"}, "containers": [{"usage": {"cpu": "120m", "memory": "100Mi"}}]},
        {"metadata": {"namespace": "a"}, "containers": [{"usage": {"cpu": "30m", "memory": "28Mi"}}]},
    ]
    assert live_usage(metrics) == {"pods": 2, "namespaces": {"a": {"cpu": "150m", "memory": "128Mi"}}}


def test_a_namespace_lists_a_bounded_number_of_workloads_but_totals_all() -> None:
    tally = UsageTally(max_listed=3)
    for page in range(4):
        tally.workloads(
            [_workload("Deployment", f"app-{page}{i}", 2, _container({"cpu": "10m"})) for i in range(5)]
        )
    (shop,) = tally.report()["namespaces"]
    assert [w["name"] for w in shop["workloads"]] == ["app-00", "app-01", "app-02"]
    assert (shop["workload_count"], shop["workloads_truncated"]) == (20, True)
    assert shop["requests"] == {"cpu": "400m"}  # 20 workloads x 2 replicas x 10m
