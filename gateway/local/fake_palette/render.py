"""Projections of the fake's records into the response shapes the spec defines, and the
search filters the fake understands. Pure functions: no request, no state changes."""

from __future__ import annotations

import copy
from typing import Any

from gateway.local.fake_palette.state import Project

__all__ = [
    "cluster_cost",
    "cluster_overview",
    "cluster_summary",
    "filter_clusters",
    "filter_packs",
    "filter_profiles",
    "profile_summary",
]

# USD per hour, for the cost endpoint: enough variety that GPU pools stand out.
_HOURLY = {
    "t3.large": 0.0832,
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "p4d.24xlarge": 32.77,
}
_DEFAULT_HOURLY = 0.2


def _pools_meta(project: Project, uid: str) -> list[dict[str, Any]]:
    pools = project.pools.get(uid, [])
    healthy = project.health[uid]["state"] == "Healthy"
    return [
        {
            "cloudType": project.clusters[uid]["spec"]["cloudType"],
            "name": p["poolConfig"]["name"],
            "size": p["poolConfig"]["size"],
            "healthy": p["poolConfig"]["size"] if healthy else max(0, p["poolConfig"]["size"] - 2),
            "isControlPlane": p["poolConfig"].get("isControlPlane", False),
            "labels": list(p["poolConfig"].get("labels", [])),
            "maintenanceMode": 0,
        }
        for p in pools
    ]


def _template_meta(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "uid": template["uid"],
        "name": template["name"],
        "type": template["type"],
        "cloudType": template["cloudType"],
        "packs": copy.deepcopy(template["packs"]),
    }


def hourly_rate(project: Project, uid: str) -> float:
    return float(
        sum(
            _HOURLY.get(p["cloudConfig"]["instanceType"], _DEFAULT_HOURLY) * p["poolConfig"]["size"]
            for p in project.pools.get(uid, [])
        )
    )


def cluster_summary(project: Project, uid: str) -> dict[str, Any]:
    """``v1SpectroClusterSummary``."""
    record = project.clusters[uid]
    rate = round(hourly_rate(project, uid), 4)
    return {
        "metadata": copy.deepcopy(record["metadata"]),
        "specSummary": {
            "cloudConfig": {
                "cloudType": record["spec"]["cloudType"],
                "uid": record["spec"]["cloudConfigRef"]["uid"],
                "machinePools": _pools_meta(project, uid),
            },
            "clusterProfileTemplates": [_template_meta(t) for t in record["spec"]["clusterProfileTemplates"]],
        },
        "status": {
            "state": record["status"]["state"],
            "health": {"state": project.health[uid]["state"]},
            "hourlyRate": {"total": rate},
        },
    }


def cluster_overview(project: Project, uid: str) -> dict[str, Any]:
    """``v1SpectroClusterUidSummary``."""
    record = project.clusters[uid]
    return {
        "metadata": copy.deepcopy(record["metadata"]),
        "spec": {
            "cloudConfig": {
                "cloudType": record["spec"]["cloudType"],
                "uid": record["spec"]["cloudConfigRef"]["uid"],
                "machinePools": _pools_meta(project, uid),
            },
            "clusterProfileTemplates": [_template_meta(t) for t in record["spec"]["clusterProfileTemplates"]],
        },
        "status": {
            "state": record["status"]["state"],
            "conditions": copy.deepcopy(record["status"]["conditions"]),
            "health": copy.deepcopy(project.health[uid]),
            "hourlyRate": {"total": round(hourly_rate(project, uid), 4)},
        },
    }


def cluster_cost(
    project: Project, uid: str, start: str, end: str, hours: float, period: int
) -> dict[str, Any]:
    """``v1SpectroClusterCostSummary`` over ``hours`` hours."""
    record = project.clusters[uid]
    compute = round(hourly_rate(project, uid) * hours, 2)
    storage = round(0.1 * compute, 2)
    total = round(compute + storage, 2)
    cloud = {"compute": compute, "storage": storage, "total": total}
    return {
        "startTime": start,
        "endTime": end,
        "period": period,
        "cluster": {
            "uid": uid,
            "name": record["metadata"]["name"],
            "cost": {"total": total, "cloud": cloud},
            "cloud": {"cost": {"total": total, "cloud": cloud}, "data": []},
        },
    }


def profile_summary(profile: dict[str, Any]) -> dict[str, Any]:
    """``v1ClusterProfileSummary``."""
    published = profile["spec"]["published"]
    return {
        "metadata": copy.deepcopy(profile["metadata"]),
        "specSummary": {
            "version": profile["spec"]["version"],
            "published": {
                "cloudType": published["cloudType"],
                "type": published["type"],
                "packs": [
                    {k: p[k] for k in ("name", "layer", "tag", "version", "type", "packUid")}
                    for p in published["packs"]
                ],
            },
        },
        "status": {"isPublished": True},
    }


def _string_match(operator: str, values: list[str], actual: str, ignore_case: bool) -> bool:
    if ignore_case:
        actual, values = actual.lower(), [v.lower() for v in values]
    if operator == "contains":
        return any(v in actual for v in values)
    if operator == "beginsWith":
        return any(actual.startswith(v) for v in values)
    return actual in values


_CLUSTER_PROPERTIES = {
    "clusterName": lambda p, uid: p.clusters[uid]["metadata"]["name"],
    "clusterState": lambda p, uid: p.clusters[uid]["status"]["state"],
    "environment": lambda p, uid: p.clusters[uid]["metadata"].get("labels", {}).get("environment", ""),
    "healthState": lambda p, uid: p.health[uid]["state"],
}


def filter_clusters(project: Project, body: dict[str, Any]) -> list[str]:
    """Uids matching a ``v1SearchFilterSummarySpec`` (string filters on the properties above,
    ``and`` within and between groups), sorted by name. Raises ``ValueError`` on anything else."""
    groups = (body.get("filter") or {}).get("filterGroups") or []
    items = [item for group in groups for item in group.get("filters") or []]
    for item in items:
        if item.get("property") not in _CLUSTER_PROPERTIES or item.get("type", "string") != "string":
            raise ValueError(f"unsupported filter property {item.get('property')!r}")
    matched = []
    for uid in project.clusters:
        ok = True
        for item in items:
            cond = (item.get("condition") or {}).get("string") or {}
            values = list((cond.get("match") or {}).get("values") or [])
            hit = _string_match(
                cond.get("operator", "eq"),
                values,
                _CLUSTER_PROPERTIES[item["property"]](project, uid),
                bool(cond.get("ignoreCase")),
            )
            ok = ok and (hit != bool(cond.get("negation")))
        if ok:
            matched.append(uid)
    return sorted(matched, key=lambda uid: project.clusters[uid]["metadata"]["name"])


def _filter_string(spec: dict[str, Any] | None, actual: str) -> bool:
    if not spec:
        return True
    ignore = spec.get("ignoreCase", True)
    for op in ("eq", "contains", "beginsWith"):
        if spec.get(op) is not None and not _string_match(op, [spec[op]], actual, ignore):
            return False
    return not (spec.get("ne") is not None and _string_match("eq", [spec["ne"]], actual, ignore))


def filter_profiles(project: Project, body: dict[str, Any]) -> list[dict[str, Any]]:
    spec = body.get("filter") or {}
    clouds = spec.get("environment") or []
    kinds = spec.get("profileType") or []
    out = []
    for profile in sorted(project.profiles.values(), key=lambda p: p["metadata"]["name"]):
        published = profile["spec"]["published"]
        if clouds and published["cloudType"] not in clouds and published["cloudType"] != "all":
            continue
        if kinds and published["type"] not in kinds:
            continue
        if _filter_string(spec.get("profileName"), profile["metadata"]["name"]):
            out.append(profile)
    return out


def filter_packs(project: Project, body: dict[str, Any]) -> list[dict[str, Any]]:
    spec = body.get("filter") or {}
    layers = spec.get("layer") or []
    clouds = spec.get("environment") or []
    out, seen = [], set()
    for pack in sorted(project.packs, key=lambda p: (p["spec"]["name"], p["metadata"]["uid"])):
        if pack["metadata"]["uid"] in seen:
            continue
        seen.add(pack["metadata"]["uid"])
        if layers and pack["spec"]["layer"] not in layers:
            continue
        if clouds and not set(clouds) & {*pack["spec"]["cloudTypes"], "all"}:
            continue
        if _filter_string(spec.get("name"), pack["spec"]["name"]):
            out.append(pack)
    return out
