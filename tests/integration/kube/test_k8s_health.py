"""Diagnose and resource usage over the seeded, living sandbox: the controllers and kwok
run, so the crash-looping worker really cycles and the findings come from real state."""

from __future__ import annotations

from typing import Any

import pytest
from kube_support import ToolRunner, eventually
from kubernetes import client as k8s

pytestmark = [pytest.mark.integration, pytest.mark.kube]


def _worker(kube_admin: Any) -> Any:
    (pod,) = k8s.CoreV1Api(kube_admin).list_namespaced_pod("dev", label_selector="app=worker").items
    return pod


async def test_the_seeded_worker_really_crash_loops(kube_seeded: Any, kube_admin: Any) -> None:
    start = _worker(kube_admin).status.container_statuses[0].restart_count

    async def restarted() -> Any:
        status = _worker(kube_admin).status.container_statuses[0]
        return status if status.restart_count >= start + 1 else None

    status = await eventually(restarted, what="the worker restarting once more")
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.reason == "Error"
    events = k8s.CoreV1Api(kube_admin).list_namespaced_event(
        "dev", field_selector=f"involvedObject.name={_worker(kube_admin).metadata.name},reason=BackOff"
    )
    assert events.items
    assert events.items[0].type == "Warning"


async def test_diagnose_names_the_crash_looping_worker_and_why(
    kube_tools: ToolRunner, kube_seeded: Any
) -> None:
    async def crash_found() -> tuple[dict[str, Any], dict[str, Any]] | None:
        report = await kube_tools.call("k8s_diagnose", namespace="dev")
        found = [f for f in report["findings"] if f["reason"] == "CrashLoopBackOff"]
        return (report, found[0]) if found else None

    dev, crash = await eventually(crash_found, what="the worker seen in CrashLoopBackOff")
    assert crash["object"].startswith("Pod/dev/worker-")
    assert crash["severity"] == "high"
    assert "container worker is crash-looping" in crash["message"]
    assert "last exit: Error, code 1" in crash["message"]
    assert any(f["category"] == "limits" and f["object"] == "Deployment/dev/worker" for f in dev["findings"])
    assert any(f["category"] == "events" and f["reason"] == "BackOff" for f in dev["findings"])
    payments = await kube_tools.call("k8s_diagnose", namespace="payments")
    assert dev["score"] < payments["score"] <= 100
    assert dev["summary"]["nodes"] is None  # a namespace scope does not judge nodes


async def test_workloads_the_controllers_run_are_healthy(kube_tools: ToolRunner, kube_seeded: Any) -> None:
    report = await kube_tools.call("k8s_diagnose", namespace="payments")
    assert not [f for f in report["findings"] if f["category"] in {"workloads", "pods"}], report["findings"]
    assert report["summary"]["pods"] == 4  # api x3, postgres x1, all Running
    assert report["status"] == "healthy"


async def test_cluster_wide_diagnose_judges_nodes(kube_tools: ToolRunner, kube_seeded: Any) -> None:
    call = await kube_tools.plan("k8s_diagnose")
    assert call.actions[0].target.all_namespaces is True
    report = await kube_tools.execute(call)
    assert report["summary"]["nodes"] >= 3
    assert report["summary"]["nodes_ready"] >= 3
    assert report["scan"]["pages"] >= 5  # pods, three workload kinds, events, nodes
    assert 0 <= report["score"] <= 100


async def test_resource_usage_sums_templates_times_replicas(kube_tools: ToolRunner, kube_seeded: Any) -> None:
    usage = await kube_tools.call("k8s_resource_usage", namespace="payments")

    (payments,) = usage["namespaces"]
    workloads = {(w["kind"], w["name"]): w for w in payments["workloads"]}
    api = workloads[("Deployment", "api")]
    assert (api["replicas"], api["per_pod"]["requests"]) == (3, {"cpu": "250m", "memory": "256Mi"})
    assert api["requests"] == {"cpu": "750m", "memory": "768Mi"}
    assert workloads[("StatefulSet", "postgres")]["limits"] == {"cpu": "1", "memory": "2Gi"}
    # The controllers' pods have owners: they count through their templates, not twice.
    assert set(workloads) == {("Deployment", "api"), ("StatefulSet", "postgres")}
    assert payments["requests"] == {"cpu": "1250m", "memory": "1792Mi"}
    assert usage["live_usage"] is None
    assert "metrics-server" in usage["live_usage_note"]


async def test_without_controllers_workloads_are_reported_as_unobserved(quiet_tools: ToolRunner) -> None:
    report = await quiet_tools.call("k8s_diagnose", namespace="payments")
    unobserved = [f for f in report["findings"] if f["category"] == "workloads"]
    assert {f["object"] for f in unobserved} == {"Deployment/payments/api", "StatefulSet/payments/postgres"}
    assert {f["severity"] for f in unobserved} == {"info"}
    assert report["summary"]["pods"] == 0  # nothing creates them
    assert report["status"] == "healthy"
