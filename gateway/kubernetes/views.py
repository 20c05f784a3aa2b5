"""Compact views of events, nodes and written objects: what an operator reads, not the whole object."""

from __future__ import annotations

from typing import Any

__all__ = ["event_view", "node_ready", "node_view", "partly_done", "summary"]

JSON = dict[str, Any]
_ROLE_PREFIX = "node-role.kubernetes.io/"


def event_view(event: JSON) -> JSON:
    meta = event.get("metadata") or {}
    involved = event.get("involvedObject") or {}
    series = event.get("series") or {}
    last_seen = (
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or meta.get("creationTimestamp")
    )
    source = event.get("source") or {}
    return {
        "type": event.get("type"),
        "reason": event.get("reason"),
        "message": event.get("message"),
        "object": {
            "kind": involved.get("kind"),
            "name": involved.get("name"),
            "namespace": involved.get("namespace"),
        },
        "count": event.get("count") or series.get("count") or 1,
        "first_seen": event.get("firstTimestamp") or event.get("eventTime"),
        "last_seen": last_seen,
        "source": source.get("component") or event.get("reportingComponent") or None,
    }


def node_ready(node: JSON) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def node_view(node: JSON) -> JSON:
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    labels = meta.get("labels") or {}
    info = status.get("nodeInfo") or {}
    problems = [
        {
            "type": c.get("type"),
            "status": c.get("status"),
            "reason": c.get("reason"),
            "message": c.get("message"),
        }
        for c in status.get("conditions") or []
        if (c.get("type") == "Ready") != (c.get("status") == "True")
    ]
    return {
        "name": meta.get("name"),
        "ready": node_ready(node),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "roles": sorted(k.removeprefix(_ROLE_PREFIX) for k in labels if k.startswith(_ROLE_PREFIX)),
        "kubelet_version": info.get("kubeletVersion"),
        "os_image": info.get("osImage"),
        "capacity": status.get("capacity") or {},
        "allocatable": status.get("allocatable") or {},
        "taints": (node.get("spec") or {}).get("taints") or [],
        "problems": problems,
        "created": meta.get("creationTimestamp"),
    }


def summary(obj: JSON, *, created: bool | None = None) -> JSON:
    """What a write returns about one object: identity and versions, not its body."""
    meta = obj.get("metadata") or {}
    out: JSON = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
        "generation": meta.get("generation"),
    }
    if created is not None:
        out["created"] = created
    return out


def partly_done(exc: Exception, done: list[JSON], total: int, verb: str) -> Exception:
    """``exc`` (a ``BackendError``) again, its message saying what was already done first: a
    multi-object call that failed halfway reports the objects it did write."""
    listed = ", ".join(f"{d['kind']} {d['name']}" for d in done)
    return type(exc)(f"{verb} {len(done)} of {total} objects ({listed}); then: {exc}")
