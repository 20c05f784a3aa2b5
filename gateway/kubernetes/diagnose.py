"""A 0-100 health score with findings, from objects already read (no I/O here).

Each finding names the object and the cause (``reason``: CrashLoopBackOff, OOMKilled,
ImagePullBackOff, Unschedulable, KubeletNotReady...) and costs points by severity; each
category's cost is capped, so fifty warning events cannot outweigh one unready node.
Objects no controller has looked at yet (no ``status.observedGeneration``, as on a
cluster without controller-manager) are reported as such and cost nothing: their replica
counts say nothing about health.

``Diagnosis`` takes objects a page at a time and keeps only counts and the most severe
``MAX_FINDINGS`` findings, so a cluster of any size is judged in bounded memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.kubernetes.views import event_view, node_ready

__all__ = ["MAX_FINDINGS", "Diagnosis", "Finding", "diagnose"]

JSON = dict[str, Any]
Severity = Literal["critical", "high", "medium", "low", "info"]

MAX_FINDINGS = 100
_COST: dict[Severity, int] = {"critical": 25, "high": 15, "medium": 8, "low": 3, "info": 0}
_CATEGORY_CAP = {"nodes": 60, "pods": 45, "workloads": 30, "events": 15, "limits": 10}
_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_IMAGE_PROBLEMS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
_PENDING_GRACE_SECONDS = 300
_RESTARTS_NOTABLE = 5
_MESSAGE_CHARS = 300
# Distinct (reason, object) warning-event groups remembered; more are counted, not listed.
_EVENT_GROUPS = 1000


@dataclass(frozen=True)
class Finding:
    severity: Severity
    category: str
    object: str
    message: str
    reason: str | None = None

    def as_json(self) -> JSON:
        return {
            "severity": self.severity,
            "category": self.category,
            "object": self.object,
            "reason": self.reason,
            "message": self.message,
        }

    def order(self) -> tuple[int, str, str, str]:
        return (_ORDER[self.severity], self.category, self.object, self.message)


def _ref(kind: str, obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{meta.get('name')}" if ns else f"{kind}/{meta.get('name')}"


def _short(text: Any) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= _MESSAGE_CHARS else value[: _MESSAGE_CHARS - 1] + "…"


def _age_seconds(timestamp: str | None, now: datetime) -> float | None:
    if not timestamp:
        return None
    try:
        return (now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None


def _memory_limit(pod: JSON, container: str) -> str | None:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return ((spec.get("resources") or {}).get("limits") or {}).get("memory")
    return None


def _container_findings(pod: JSON, ref: str, status: JSON) -> list[Finding]:
    found: list[Finding] = []
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason, restarts = waiting.get("reason"), int(cs.get("restartCount") or 0)
        last = (cs.get("lastState") or {}).get("terminated") or {}
        name = cs.get("name")
        if reason == "CrashLoopBackOff":
            exited = (
                f"; last exit: {last.get('reason') or 'unknown'}, code {last.get('exitCode')}" if last else ""
            )
            counted = f"{restarts} restart{'' if restarts == 1 else 's'}"
            message = f"container {name} is crash-looping ({counted}{exited})"
            found.append(Finding("high", "pods", ref, message, "CrashLoopBackOff"))
        elif reason in _IMAGE_PROBLEMS:
            detail = f": {_short(waiting.get('message'))}" if waiting.get("message") else ""
            message = f"container {name} cannot start, {reason}{detail}"
            found.append(Finding("high", "pods", ref, message, reason))
        elif restarts >= _RESTARTS_NOTABLE:
            message = f"container {name} restarted {restarts} times"
            found.append(Finding("low", "pods", ref, message, "Restarts"))
        if last.get("reason") == "OOMKilled":
            limit = _memory_limit(pod, str(name))
            bound = f"its memory limit {limit}" if limit else "no memory limit (the node ran out)"
            message = f"container {name} was OOMKilled at {bound}; raise the limit or find the leak"
            found.append(Finding("medium", "pods", ref, message, "OOMKilled"))
    return found


def _pod_findings(pod: JSON, now: datetime) -> list[Finding]:
    ref, status = _ref("Pod", pod), pod.get("status") or {}
    found = _container_findings(pod, ref, status)
    phase = status.get("phase")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    if phase == "Pending" and scheduled.get("reason") == "Unschedulable":
        message = _short(scheduled.get("message")) or "no node fits"
        found.append(Finding("high", "pods", ref, f"unschedulable: {message}", "Unschedulable"))
    elif phase == "Pending" and not found:
        age = _age_seconds((pod.get("metadata") or {}).get("creationTimestamp"), now)
        if age is not None and age > _PENDING_GRACE_SECONDS:
            found.append(Finding("medium", "pods", ref, f"pending for {int(age // 60)} minutes", "Pending"))
    elif phase == "Failed":
        reason = status.get("reason") or "Failed"
        detail = _short(status.get("message")) or "see its events"
        found.append(Finding("medium", "pods", ref, f"failed ({reason}): {detail}", reason))
    elif phase == "Running" and (conditions.get("Ready") or {}).get("status") == "False" and not found:
        found.append(Finding("medium", "pods", ref, "running but not ready", "NotReady"))
    return found


def _node_findings(node: JSON) -> list[Finding]:
    ref = _ref("Node", node)
    conditions = (node.get("status") or {}).get("conditions") or []
    if not node_ready(node):
        ready: JSON = next((c for c in conditions if c.get("type") == "Ready"), {})
        if not ready:
            message = "node is not Ready: it never reported its status"
            return [Finding("critical", "nodes", ref, message, "NotReady")]
        state = "stopped reporting (Ready=Unknown)" if ready.get("status") == "Unknown" else "is not Ready"
        reason = str(ready.get("reason") or "NotReady")
        detail = _short(ready.get("message"))
        message = f"node {state}: {reason}" + (f": {detail}" if detail else "")
        return [Finding("critical", "nodes", ref, message, reason)]
    found = [
        Finding("medium", "nodes", ref, f"{c.get('type')}: {_short(c.get('message') or c.get('reason'))}",
                str(c.get("type")))
        for c in conditions
        if c.get("type") != "Ready" and c.get("status") == "True"
    ]  # fmt: skip
    if (node.get("spec") or {}).get("unschedulable"):
        found.append(Finding("low", "nodes", ref, "node is cordoned (unschedulable)", "Cordoned"))
    return found


def _true_condition(status: JSON, kind: str) -> JSON | None:
    return next(
        (c for c in status.get("conditions") or [] if c.get("type") == kind and c.get("status") == "True"),
        None,
    )


def _workload_findings(obj: JSON) -> list[Finding]:
    kind = str(obj.get("kind") or "Workload")
    ref, spec, status = _ref(kind, obj), obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    found = [
        Finding("low", "limits", ref, f"container {c.get('name')} has no resource limits", "NoLimits")
        for c in template.get("containers") or []
        if not (c.get("resources") or {}).get("limits")
    ]
    if "observedGeneration" not in status:
        message = "not yet observed by a controller; replica health unknown"
        found.append(Finding("info", "workloads", ref, message, "Unobserved"))
        return found
    if kind == "DaemonSet":
        wanted, ready = status.get("desiredNumberScheduled") or 0, status.get("numberReady") or 0
    else:
        wanted, ready = spec.get("replicas", 1), status.get("readyReplicas") or 0
    if isinstance(wanted, int) and ready < wanted:
        severity: Severity = "high" if ready == 0 else "medium"
        failure = _true_condition(status, "ReplicaFailure")
        why = f"; {failure.get('reason')}: {_short(failure.get('message'))}" if failure else ""
        message = f"{ready}/{wanted} replicas ready{why}"
        found.append(Finding(severity, "workloads", ref, message, "ReplicasNotReady"))
    return found


class Diagnosis:
    """The report, built a page at a time. ``nodes_examined`` is false for a namespace
    scope (nodes are not judged there)."""

    def __init__(self, *, nodes_examined: bool, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self.nodes_examined = nodes_examined
        self.counts = {"pods": 0, "workloads": 0, "nodes": 0, "nodes_ready": 0, "warning_events": 0}
        self._cost: dict[str, int] = {}
        self._kept: list[tuple[tuple[int, str, str, str], Finding]] = []
        self._total = 0
        self._event_groups: set[tuple[str, str]] = set()
        self._no_nodes = False

    def _add(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self._total += 1
            self._cost[finding.category] = self._cost.get(finding.category, 0) + _COST[finding.severity]
            entry = (finding.order(), finding)
            if len(self._kept) < MAX_FINDINGS or entry[0] < self._kept[-1][0]:
                bisect.insort(self._kept, entry, key=lambda e: e[0])
                del self._kept[MAX_FINDINGS:]

    def pods(self, page: Iterable[JSON]) -> None:
        for pod in page:
            self.counts["pods"] += 1
            self._add(_pod_findings(pod, self.now))

    def workloads(self, page: Iterable[JSON]) -> None:
        for obj in page:
            self.counts["workloads"] += 1
            self._add(_workload_findings(obj))

    def nodes(self, page: Iterable[JSON]) -> None:
        for node in page:
            self.counts["nodes"] += 1
            self.counts["nodes_ready"] += node_ready(node)
            self._add(_node_findings(node))

    def events(self, page: Iterable[JSON]) -> None:
        for event in page:
            if event.get("type") != "Warning":
                continue
            self.counts["warning_events"] += 1
            view = event_view(event)
            obj = view["object"]
            ref = "/".join(str(p) for p in (obj["kind"], obj["namespace"], obj["name"]) if p)
            key = (str(view["reason"]), ref)
            if key in self._event_groups or len(self._event_groups) >= _EVENT_GROUPS:
                continue
            self._event_groups.add(key)
            message = f"warning event {view['reason']}: {_short(view['message'])[:200]}"
            self._add([Finding("low", "events", ref, message, str(view["reason"]))])

    def report(self) -> JSON:
        if self.nodes_examined and not self.counts["nodes"] and not self._no_nodes:
            self._no_nodes = True
            message = "no nodes are registered: nothing can run"
            self._add([Finding("high", "nodes", "cluster", message, "NoNodes")])
        findings = list(self._kept)
        penalty = sum(min(total, _CATEGORY_CAP.get(category, 30)) for category, total in self._cost.items())
        score = max(0, 100 - penalty)
        summary: JSON = {**self.counts, "findings": self._total}
        if not self.nodes_examined:
            summary["nodes"] = summary["nodes_ready"] = None
        return {
            "score": score,
            "status": "healthy" if score >= 85 else "degraded" if score >= 50 else "critical",
            "summary": summary,
            "findings": [f.as_json() for _, f in findings],
            "findings_truncated": self._total > len(findings),
        }


def diagnose(
    *,
    pods: list[JSON],
    workloads: list[JSON],
    events: list[JSON],
    nodes: list[JSON] | None,
    now: datetime | None = None,
) -> JSON:
    """The report over lists already read. ``nodes`` is None when they were not examined."""
    diagnosis = Diagnosis(nodes_examined=nodes is not None, now=now)
    diagnosis.pods(pods)
    diagnosis.nodes(nodes or [])
    diagnosis.workloads(workloads)
    diagnosis.events(events)
    return diagnosis.report()
