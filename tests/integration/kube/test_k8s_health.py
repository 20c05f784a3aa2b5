"""Diagnose and resource usage over the seeded sandbox (no controllers run there)."""

from __future__ import annotations

from typing import Any

import pytest
from kube_support import ToolRunner

pytestmark = [pytest.mark.integration, pytest.mark.kube]


async def test_diagnose_finds_the_crash_looping_pod_and_lowers_the_score(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    dev = await kube_tools.call("k8s_diagnose", namespace="dev")
    payments = await kube_tools.call("k8s_diagnose", namespace="payments")

    crash = [
        f for f in dev["findings"] if f["object"] == "Pod/dev/worker-5c8d7f-zt9wl" and f["severity"] == "high"
    ]
    assert crash
    assert "crash-looping (7 restarts)" in crash[0]["message"]
    assert any(f["category"] == "limits" and "worker" in f["object"] for f in dev["findings"])
    assert any(f["category"] == "events" and "BackOff" in f["message"] for f in dev["findings"])
    assert dev["score"] < payments["score"] <= 100
    assert dev["summary"]["nodes"] is None  # a namespace scope does not judge nodes


async def test_diagnose_copes_with_workloads_no_controller_has_observed(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    report = await kube_tools.call("k8s_diagnose", namespace="payments")
    unobserved = [f for f in report["findings"] if f["category"] == "workloads"]
    assert {f["object"] for f in unobserved} == {"Deployment/payments/api", "StatefulSet/payments/postgres"}
    assert {f["severity"] for f in unobserved} == {"info"}
    assert report["status"] == "healthy"


async def test_cluster_wide_diagnose_judges_nodes(kube_tools: ToolRunner, kube_seeded: Any) -> None:
    call = await kube_tools.plan("k8s_diagnose")
    assert call.actions[0].target.all_namespaces is True
    report = await kube_tools.execute(call)
    assert report["summary"]["nodes"] >= 1
    assert report["summary"]["nodes_ready"] >= 1
    assert 0 <= report["score"] <= 100


async def test_resource_usage_sums_templates_times_replicas(kube_tools: ToolRunner, kube_seeded: Any) -> None:
    usage = await kube_tools.call("k8s_resource_usage", namespace="payments")

    (payments,) = usage["namespaces"]
    workloads = {(w["kind"], w["name"]): w for w in payments["workloads"]}
    api = workloads[("Deployment", "api")]
    assert (api["replicas"], api["per_pod"]["requests"]) == (3, {"cpu": "250m", "memory": "256Mi"})
    assert api["requests"] == {"cpu": "750m", "memory": "768Mi"}
    assert workloads[("StatefulSet", "postgres")]["limits"] == {"cpu": "1", "memory": "2Gi"}
    # Pods owned by nothing count on their own; the seeded pods are bare.
    assert ("Pod", "api-7d9c5b-x2k4p") in workloads
    assert payments["requests"]["cpu"] == "1500m"
    assert usage["live_usage"] is None
    assert "metrics-server" in usage["live_usage_note"]
