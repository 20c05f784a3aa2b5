"""Requests and limits by namespace and workload, from pod templates times replicas.

Desired capacity is computed from the workloads' templates, so the answer does not depend
on which pods happen to run (and is meaningful on a cluster without controllers). Bare
pods (no owner) count once each. A pod's effective request is what the scheduler uses:
the larger of the sum over its containers and its largest init container, plus overhead.
``UsageTally`` reads objects a page at a time and lists a bounded number per namespace.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from gateway.kubernetes.quantities import amount

__all__ = [
    "MAX_LISTED_PER_NAMESPACE",
    "UsageTally",
    "format_quantity",
    "live_usage",
    "pod_resources",
    "usage_report",
    "workload_replicas",
]

JSON = dict[str, Any]
Amounts = dict[str, Decimal]
_BINARY = [("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]
_BYTES = {"memory", "ephemeral-storage", "storage"}
MAX_LISTED_PER_NAMESPACE = 50


def _parse(value: Any) -> Decimal:
    try:
        return amount(value)
    except ValueError:
        return Decimal(0)  # the server validated it; an odd form must not break the report


def format_quantity(resource: str, amount: Decimal) -> str:
    """``1500m`` for CPU, ``3Gi`` for bytes when exact, plain numbers otherwise."""
    if resource == "cpu":
        millis = int((amount * 1000).to_integral_value())
        return f"{millis}m" if millis % 1000 else str(millis // 1000)
    if resource in _BYTES or resource.startswith("hugepages-"):
        whole = int(amount)
        for suffix, size in _BINARY:
            if whole >= size and whole % size == 0:
                return f"{whole // size}{suffix}"
        return str(whole)
    return str(int(amount)) if amount == amount.to_integral_value() else str(amount)


def _formatted(amounts: Amounts) -> dict[str, str]:
    return {name: format_quantity(name, value) for name, value in sorted(amounts.items())}


def _add(into: Amounts, more: Amounts, times: int = 1) -> None:
    for name, value in more.items():
        into[name] = into.get(name, Decimal(0)) + value * times


def pod_resources(pod_spec: JSON) -> tuple[Amounts, Amounts]:
    """Effective (requests, limits) of one pod."""
    totals: list[Amounts] = [{}, {}]
    for container in pod_spec.get("containers") or []:
        resources = container.get("resources") or {}
        for i, field in enumerate(("requests", "limits")):
            _add(totals[i], {k: _parse(v) for k, v in (resources.get(field) or {}).items()})
    for init in pod_spec.get("initContainers") or []:
        resources = init.get("resources") or {}
        for i, field in enumerate(("requests", "limits")):
            for name, value in (resources.get(field) or {}).items():
                totals[i][name] = max(totals[i].get(name, Decimal(0)), _parse(value))
    overhead = {k: _parse(v) for k, v in (pod_spec.get("overhead") or {}).items()}
    _add(totals[0], overhead)
    _add(totals[1], overhead)
    return totals[0], totals[1]


def workload_replicas(obj: JSON) -> int | None:
    """Desired pods: ``spec.replicas`` (default 1); a DaemonSet's scheduled count if known."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if obj.get("kind") == "DaemonSet":
        scheduled = status.get("desiredNumberScheduled")
        return int(scheduled) if isinstance(scheduled, int) else None
    replicas = spec.get("replicas", 1)
    return int(replicas) if isinstance(replicas, int) else 1


def _without_limits(pod_spec: JSON) -> list[str]:
    return [
        str(c.get("name"))
        for c in pod_spec.get("containers") or []
        if not ((c.get("resources") or {}).get("limits"))
    ]


def _entry(obj: JSON, pod_spec: JSON, replicas: int | None) -> tuple[JSON, Amounts, Amounts]:
    requests, limits = pod_resources(pod_spec)
    count = replicas or 0
    total_requests: Amounts = {}
    total_limits: Amounts = {}
    if count:  # scaled to zero, or a DaemonSet whose node count is unknown: nothing to add
        _add(total_requests, requests, count)
        _add(total_limits, limits, count)
    entry = {
        "kind": obj.get("kind"),
        "name": (obj.get("metadata") or {}).get("name"),
        "replicas": replicas,
        "per_pod": {"requests": _formatted(requests), "limits": _formatted(limits)},
        "requests": _formatted(total_requests),
        "limits": _formatted(total_limits),
        "containers_without_limits": _without_limits(pod_spec),
    }
    return entry, total_requests, total_limits


class UsageTally:
    """Per-namespace and total requests/limits, built a page at a time. Totals cover
    every object; each namespace lists at most ``max_listed`` workloads (by kind and
    name) and says how many it has, so the answer stays bounded at any cluster size."""

    def __init__(self, *, max_listed: int = MAX_LISTED_PER_NAMESPACE) -> None:
        self.max_listed = max_listed
        self._namespaces: dict[str, JSON] = {}
        self._totals: list[Amounts] = [{}, {}]

    def workloads(self, page: Iterable[JSON]) -> None:
        """Objects with a pod template and their ``kind``."""
        for obj in page:
            template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
            self._add(obj, template, workload_replicas(obj))

    def pods(self, page: Iterable[JSON]) -> None:
        """Pods; only bare ones (no owner) count, once each: the others are in a template."""
        for pod in page:
            if not (pod.get("metadata") or {}).get("ownerReferences"):
                self._add({**pod, "kind": "Pod"}, pod.get("spec") or {}, 1)

    def _add(self, obj: JSON, pod_spec: JSON, replicas: int | None) -> None:
        entry, requests, limits = _entry(obj, pod_spec, replicas)
        bucket = self._namespaces.setdefault(
            _namespace(obj), {"workloads": [], "count": 0, "requests": {}, "limits": {}}
        )
        bucket["count"] += 1
        listed: list[tuple[tuple[str, str], JSON]] = bucket["workloads"]
        key = _workload_key(entry)
        if len(listed) < self.max_listed or key < listed[-1][0]:
            bisect.insort(listed, (key, entry), key=lambda e: e[0])
            del listed[self.max_listed :]
        _add(bucket["requests"], requests)
        _add(bucket["limits"], limits)
        _add(self._totals[0], requests)
        _add(self._totals[1], limits)

    def report(self) -> JSON:
        namespaces: list[JSON] = [
            {
                "namespace": name,
                "requests": _formatted(bucket["requests"]),
                "limits": _formatted(bucket["limits"]),
                "workloads": [entry for _, entry in bucket["workloads"]],
                "workload_count": bucket["count"],
                "workloads_truncated": bucket["count"] > len(bucket["workloads"]),
            }
            for name, bucket in sorted(self._namespaces.items())
        ]
        return {
            "namespaces": namespaces,
            "totals": {"requests": _formatted(self._totals[0]), "limits": _formatted(self._totals[1])},
        }


def usage_report(workloads: Iterable[JSON], pods: Iterable[JSON]) -> JSON:
    """Per-namespace and total requests/limits. ``workloads`` carry their ``kind``."""
    tally = UsageTally()
    tally.workloads(workloads)
    tally.pods(pods)
    return tally.report()


def live_usage(pod_metrics: Iterable[JSON]) -> JSON:
    """metrics-server's PodMetrics summed by namespace."""
    per_ns: dict[str, Amounts] = defaultdict(dict)
    count = 0
    for item in pod_metrics:
        count += 1
        for container in item.get("containers") or []:
            _add(per_ns[_namespace(item)], {k: _parse(v) for k, v in (container.get("usage") or {}).items()})
    return {"pods": count, "namespaces": {ns: _formatted(amounts) for ns, amounts in sorted(per_ns.items())}}


def _workload_key(entry: JSON) -> tuple[str, str]:
    return str(entry["kind"]), str(entry["name"])


def _namespace(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")
