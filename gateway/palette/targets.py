"""What a Palette call touches, as policy sees it: the ``Target`` of a cluster (uid, name,
environment from the cluster's tag), and compact views of Palette documents for results."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from gateway.contracts import Target
from gateway.palette.client import PaletteClient

__all__ = [
    "CLUSTER_KIND",
    "cluster_row",
    "cluster_target",
    "digest",
    "environment_of",
    "policy_image",
    "resolve_cluster",
]

CLUSTER_KIND = "SpectroCluster"


def environment_of(document: dict[str, Any], label: str) -> str | None:
    """The environment tag of a Palette object (its ``metadata.labels[label]``), or None."""
    labels = (document.get("metadata") or {}).get("labels") or {}
    value = labels.get(label) if isinstance(labels, dict) else None
    return value if isinstance(value, str) and value else None


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def policy_image(cluster: dict[str, Any]) -> dict[str, Any]:
    """The cluster as policy may see it: every pack's ``values`` (YAML that can carry
    credentials) replaced by its ``sha256:`` digest, the way Secret data is for Kubernetes."""
    image = copy.deepcopy(cluster)
    for template in (image.get("spec") or {}).get("clusterProfileTemplates") or []:
        for pack in template.get("packs") or []:
            if isinstance(pack, dict) and isinstance(pack.get("values"), str):
                pack["values"] = digest(pack["values"])
    return image


def cluster_target(cluster: dict[str, Any], label: str) -> Target:
    meta = cluster.get("metadata") or {}
    return Target(
        cluster=str(meta.get("uid") or "") or None,
        kind=CLUSTER_KIND,
        name=str(meta.get("name") or "") or None,
        environment=environment_of(cluster, label),
    )


async def resolve_cluster(client: PaletteClient, uid: str, label: str) -> tuple[Target, dict[str, Any]]:
    """The live ``v1SpectroCluster`` and its target; ``NotFound`` when there is none."""
    cluster = await client.get_cluster(uid)
    return cluster_target(cluster, label), cluster


def cluster_row(summary: dict[str, Any], label: str) -> dict[str, Any]:
    """One line of a cluster list, from a ``v1SpectroClusterSummary``."""
    meta = summary.get("metadata") or {}
    spec = summary.get("specSummary") or {}
    status = summary.get("status") or {}
    pools = (spec.get("cloudConfig") or {}).get("machinePools") or []
    return {
        "uid": meta.get("uid"),
        "name": meta.get("name"),
        "state": status.get("state"),
        "health": (status.get("health") or {}).get("state"),
        "environment": environment_of(summary, label),
        "cloud_type": (spec.get("cloudConfig") or {}).get("cloudType"),
        "node_count": sum(int(p.get("size") or 0) for p in pools),
        "profiles": [t.get("name") for t in spec.get("clusterProfileTemplates") or []],
    }
