"""A 0-100 health score with findings, from objects already read (no I/O here).

Each finding costs points by severity; each category's cost is capped, so fifty warning
events cannot outweigh one unready node. Objects no controller has looked at yet (no
``status.observedGeneration``, as on a cluster without controller-manager) are reported
as such and cost nothing: their replica counts say nothing about health.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.kubernetes.views import event_view, node_ready

__all__ = ["Finding", "diagnose"]

JSON = dict[str, Any]
Severity = Literal["critical", "high", "medium", "low", "info"]

_COST: dict[Severity, int] = {"critical": 25, "high": 15, "medium": 8, "low": 3, "info": 0}
_CATEGORY_CAP = {"nodes": 60, "pods": 45, "workloads": 30, "events": 15, "limits": 10}
_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_IMAGE_PROBLEMS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
_PENDING_GRACE_SECONDS = 300
_RESTARTS_NOTABLE = 5
_MAX_FINDINGS = 100


@dataclass(frozen=True)
class Finding:
    severity: Severity
    category: str
    object: str
    message: str

    def as_json(self) -> JSON:
        return {
            "severity": self.severity,
            "category": self.category,
            "object": self.object,
            "message": self.message,
        }


def _ref(kind: str, obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{meta.get('name')}" if ns else f"{kind}/{meta.get('name')}"


def _age_seconds(timestamp: str | None, now: datetime) -> float | None:
    if not timestamp:
        return None
    try:
        return (now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None


def _pod_findings(pod: JSON, now: datetime) -> list[Finding]:
    ref, status = _ref("Pod", pod), pod.get("status") or {}
    found: list[Finding] = []
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason, restarts = waiting.get("reason"), int(cs.get("restartCount") or 0)
        last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
        name = cs.get("name")
        if reason == "CrashLoopBackOff":
            found.append(
                Finding("high", "pods", ref, f"container {name} is crash-looping ({restarts} restarts)")
            )
        elif reason in _IMAGE_PROBLEMS:
            found.append(Finding("high", "pods", ref, f"container {name} cannot start: {reason}"))
        elif restarts >= _RESTARTS_NOTABLE:
            found.append(Finding("low", "pods", ref, f"container {name} restarted {restarts} times"))
        if last == "OOMKilled":
            found.append(
                Finding("medium", "pods", ref, f"container {name} was OOMKilled; raise its memory limit")
            )
    phase = status.get("phase")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    if phase == "Pending" and scheduled.get("reason") == "Unschedulable":
        found.append(
            Finding("high", "pods", ref, f"unschedulable: {scheduled.get('message') or 'no node fits'}")
        )
    elif phase == "Pending" and not found:
        age = _age_seconds((pod.get("metadata") or {}).get("creationTimestamp"), now)
        if age is not None and age > _PENDING_GRACE_SECONDS:
            found.append(Finding("medium", "pods", ref, f"pending for {int(age // 60)} minutes"))
    elif phase == "Failed":
        found.append(Finding("medium", "pods", ref, f"failed: {status.get('reason') or 'see its events'}"))
    elif phase == "Running" and (conditions.get("Ready") or {}).get("status") == "False" and not found:
        found.append(Finding("medium", "pods", ref, "running but not ready"))
    return found


def _node_findings(node: JSON) -> list[Finding]:
    ref = _ref("Node", node)
    if not node_ready(node):
        return [Finding("critical", "nodes", ref, "node is not Ready")]
    found = [
        Finding("medium", "nodes", ref, f"{c.get('type')}: {c.get('message') or c.get('reason') or 'True'}")
        for c in (node.get("status") or {}).get("conditions") or []
        if c.get("type") != "Ready" and c.get("status") == "True"
    ]
    if (node.get("spec") or {}).get("unschedulable"):
        found.append(Finding("low", "nodes", ref, "node is cordoned (unschedulable)"))
    return found


def _workload_findings(obj: JSON) -> list[Finding]:
    kind = str(obj.get("kind") or "Workload")
    ref, spec, status = _ref(kind, obj), obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    found = [
        Finding("low", "limits", ref, f"container {c.get('name')} has no resource limits")
        for c in template.get("containers") or []
        if not (c.get("resources") or {}).get("limits")
    ]
    if "observedGeneration" not in status:
        found.append(
            Finding("info", "workloads", ref, "not yet observed by a controller; replica health unknown")
        )
        return found
    if kind == "DaemonSet":
        wanted, ready = status.get("desiredNumberScheduled") or 0, status.get("numberReady") or 0
    else:
        wanted, ready = spec.get("replicas", 1), status.get("readyReplicas") or 0
    if isinstance(wanted, int) and ready < wanted:
        severity: Severity = "high" if ready == 0 else "medium"
        found.append(Finding(severity, "workloads", ref, f"{ready}/{wanted} replicas ready"))
    return found


def _event_findings(events: list[JSON]) -> list[Finding]:
    grouped: dict[tuple[str, str], JSON] = {}
    for event in events:
        if event.get("type") != "Warning":
            continue
        view = event_view(event)
        obj = view["object"]
        ref = "/".join(str(p) for p in (obj["kind"], obj["namespace"], obj["name"]) if p)
        grouped.setdefault((str(view["reason"]), ref), view)
    return [
        Finding("low", "events", ref, f"warning event {reason}: {str(view['message'] or '')[:200]}")
        for (reason, ref), view in grouped.items()
    ]


def diagnose(
    *,
    pods: list[JSON],
    workloads: list[JSON],
    events: list[JSON],
    nodes: list[JSON] | None,
    now: datetime | None = None,
) -> JSON:
    """The report. ``nodes`` is None when they were not examined (namespace scope)."""
    now = now or datetime.now(UTC)
    findings: list[Finding] = []
    for pod in pods:
        findings += _pod_findings(pod, now)
    for node in nodes or []:
        findings += _node_findings(node)
    if nodes is not None and not nodes:
        findings.append(Finding("high", "nodes", "cluster", "no nodes are registered: nothing can run"))
    for obj in workloads:
        findings += _workload_findings(obj)
    findings += _event_findings(events)
    cost: dict[str, int] = {}
    for f in findings:
        cost[f.category] = cost.get(f.category, 0) + _COST[f.severity]
    penalty = sum(min(total, _CATEGORY_CAP.get(category, 30)) for category, total in cost.items())
    score = max(0, 100 - penalty)
    findings.sort(key=lambda f: (_ORDER[f.severity], f.category, f.object))
    return {
        "score": score,
        "status": "healthy" if score >= 85 else "degraded" if score >= 50 else "critical",
        "summary": {
            "pods": len(pods),
            "workloads": len(workloads),
            "nodes": None if nodes is None else len(nodes),
            "nodes_ready": None if nodes is None else sum(1 for n in nodes if node_ready(n)),
            "warning_events": sum(1 for e in events if e.get("type") == "Warning"),
            "findings": len(findings),
        },
        "findings": [f.as_json() for f in findings[:_MAX_FINDINGS]],
        "findings_truncated": len(findings) > _MAX_FINDINGS,
    }
