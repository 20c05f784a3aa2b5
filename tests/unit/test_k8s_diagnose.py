"""The health score and its findings, from hand-made objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.kubernetes.diagnose import MAX_FINDINGS, Diagnosis, diagnose

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _pod(
    name: str,
    *,
    phase: str = "Running",
    waiting: str | None = None,
    restarts: int = 0,
    created: str = "2026-01-01T11:59:00Z",
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name, "namespace": "dev", "creationTimestamp": created},
        "status": {
            "phase": phase,
            "conditions": conditions or [],
            "containerStatuses": [{"name": "app", "restartCount": restarts, "state": state}],
        },
    }


def _node(name: str, ready: bool, **conditions: str) -> dict[str, Any]:
    rows = [{"type": "Ready", "status": "True" if ready else "False"}]
    rows += [{"type": t, "status": s} for t, s in conditions.items()]
    return {"metadata": {"name": name}, "status": {"conditions": rows}}


def _deployment(name: str, replicas: int, ready: int | None, *, limits: bool = True) -> dict[str, Any]:
    resources = {"limits": {"cpu": "1"}} if limits else {}
    status = {} if ready is None else {"observedGeneration": 1, "readyReplicas": ready}
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "dev"},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "resources": resources}]}},
        },
        "status": status,
    }


def _warning(reason: str, name: str) -> dict[str, Any]:
    return {
        "type": "Warning",
        "reason": reason,
        "message": "m",
        "involvedObject": {"kind": "Pod", "name": name},
    }


def _run(**kwargs: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"pods": [], "workloads": [], "events": [], "nodes": None, "now": NOW}
    fields.update(kwargs)
    return diagnose(**fields)


def test_an_empty_namespace_is_perfectly_healthy() -> None:
    report = _run()
    assert (report["score"], report["status"], report["findings"]) == (100, "healthy", [])


def test_crash_loops_and_image_pull_failures_are_high_findings() -> None:
    report = _run(
        pods=[_pod("a", waiting="CrashLoopBackOff", restarts=9), _pod("b", waiting="ImagePullBackOff")]
    )
    assert [(f["severity"], f["object"]) for f in report["findings"]] == [
        ("high", "Pod/dev/a"),
        ("high", "Pod/dev/b"),
    ]
    assert report["score"] == 70


def test_pending_pods_are_flagged_only_after_a_grace_period_or_when_unschedulable() -> None:
    fresh = _pod("fresh", phase="Pending")
    old = _pod("old", phase="Pending", created="2026-01-01T11:00:00Z")
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    stuck = _pod(
        "stuck", phase="Pending", conditions=[{**unschedulable, "message": "0/3 nodes: Insufficient cpu"}]
    )
    findings = {f["object"]: f for f in _run(pods=[fresh, old, stuck])["findings"]}
    assert "Pod/dev/fresh" not in findings
    assert findings["Pod/dev/old"]["message"] == "pending for 60 minutes"
    assert findings["Pod/dev/stuck"]["severity"] == "high"
    assert "Insufficient cpu" in findings["Pod/dev/stuck"]["message"]


def test_an_unready_node_is_critical_and_pressure_is_medium() -> None:
    report = _run(nodes=[_node("n1", ready=False), _node("n2", ready=True, DiskPressure="True")])
    severities = {f["object"]: f["severity"] for f in report["findings"]}
    assert severities == {"Node/n1": "critical", "Node/n2": "medium"}
    assert report["summary"]["nodes_ready"] == 1


def test_a_cluster_without_nodes_is_reported_but_a_namespace_scope_ignores_nodes() -> None:
    assert any("no nodes" in f["message"] for f in _run(nodes=[])["findings"])
    assert _run(nodes=None)["summary"]["nodes"] is None


def test_workloads_short_of_replicas_count_only_once_a_controller_observed_them() -> None:
    report = _run(
        workloads=[_deployment("down", 3, 0), _deployment("half", 4, 2), _deployment("new", 2, None)]
    )
    by_object = {f["object"]: f for f in report["findings"]}
    assert by_object["Deployment/dev/down"]["severity"] == "high"
    assert by_object["Deployment/dev/half"]["message"] == "2/4 replicas ready"
    assert by_object["Deployment/dev/new"]["severity"] == "info"
    assert report["score"] == 100 - 15 - 8


def test_each_category_is_capped_so_noise_cannot_zero_the_score() -> None:
    events = [_warning(f"R{i}", f"p{i}") for i in range(50)]
    no_limits = [_deployment(f"d{i}", 1, 1, limits=False) for i in range(20)]
    report = _run(events=events, workloads=no_limits)
    assert report["score"] == 100 - 15 - 10
    assert report["summary"]["warning_events"] == 50


def test_repeated_warning_events_about_one_object_are_one_finding() -> None:
    report = _run(events=[_warning("BackOff", "a"), _warning("BackOff", "a"), _warning("BackOff", "b")])
    assert len([f for f in report["findings"] if f["category"] == "events"]) == 2


def test_findings_are_ordered_by_severity() -> None:
    report = _run(
        pods=[_pod("r", restarts=6)],
        nodes=[_node("n1", ready=False)],
        workloads=[_deployment("d", 2, 1)],
    )
    assert [f["severity"] for f in report["findings"]] == ["critical", "medium", "low"]


def test_findings_name_the_cause_the_oom_limit_and_the_kubelets_reason() -> None:
    pod = _pod("a", waiting="CrashLoopBackOff", restarts=4)
    pod["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"reason": "OOMKilled", "exitCode": 137}
    }
    pod["spec"] = {"containers": [{"name": "app", "resources": {"limits": {"memory": "64Mi"}}}]}
    node = _node("n1", ready=False)
    node["status"]["conditions"][0] |= {"reason": "KubeletNotReady", "message": "PLEG is not healthy"}
    findings = {(f["object"], f["reason"]): f for f in _run(pods=[pod], nodes=[node])["findings"]}

    assert findings[("Pod/dev/a", "CrashLoopBackOff")]["message"] == (
        "container app is crash-looping (4 restarts; last exit: OOMKilled, code 137)"
    )
    assert findings[("Pod/dev/a", "OOMKilled")]["message"].startswith(
        "container app was OOMKilled at its memory limit 64Mi"
    )
    assert (
        findings[("Node/n1", "KubeletNotReady")]["message"]
        == "node is not Ready: KubeletNotReady: PLEG is not healthy"
    )


def test_page_by_page_the_report_keeps_the_most_severe_findings_and_counts_them_all() -> None:
    diagnosis = Diagnosis(nodes_examined=False, now=NOW)
    for page in range(10):
        diagnosis.pods([_pod(f"p{page}-{i}", restarts=6) for i in range(50)])  # 500 low findings
    diagnosis.pods([_pod("crashing", waiting="CrashLoopBackOff", restarts=9)])
    report = diagnosis.report()

    assert report["summary"]["pods"] == 501
    assert report["summary"]["findings"] == 501
    assert len(report["findings"]) == MAX_FINDINGS
    assert report["findings_truncated"] is True
    assert report["findings"][0]["object"] == "Pod/dev/crashing"
    assert report == diagnosis.report()  # reporting again changes nothing
