"""The fake Palette's data: per-project clusters, profiles, packs and events, seeded
deterministically so tests can name what they expect.

Seeded project (``DEMO_PROJECT`` unless told otherwise): clusters in every interesting
state, two tagged ``environment: production`` (one with a GPU machine pool), one unhealthy
with warning events, one provisioning, one deleting, and enough ``fleet-*`` clusters to need
paging (more than 50). Records are kept in the shapes the API returns
(``v1SpectroCluster``), so rendering is projection, not invention.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEMO_PROJECT", "FLEET_SIZE", "Project", "seed_project"]

DEMO_PROJECT = "project-demo"
FLEET_SIZE = 56
_T0 = "2026-01-05T09:00:00.000Z"


def uid_for(*parts: str) -> str:
    """A stable 24-hex uid, the length Palette's uids have."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


@dataclass
class Project:
    uid: str
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    packs: list[dict[str, Any]] = field(default_factory=list)


def _pack(name: str, layer: str, tag: str, values: str = "", pack_type: str = "spectro") -> dict[str, Any]:
    return {
        "name": name,
        "layer": layer,
        "tag": tag,
        "version": tag,
        "type": pack_type,
        "packUid": uid_for("pack", name, tag),
        "values": values,
    }


_PROFILE_DEFS: list[tuple[str, str, str, list[dict[str, Any]], str]] = [
    # name, type, cloudType, packs, description
    (
        "aws-base-k8s-1.30",
        "cluster",
        "aws",
        [
            _pack("ubuntu-aws", "os", "22.04"),
            _pack("kubernetes", "k8s", "1.30.4", "apiServer:\n  auditLog: true\n"),
            _pack("cni-calico", "cni", "3.28.0"),
            _pack("csi-aws-ebs", "csi", "1.30.0"),
        ],
        "general purpose web and api services on aws",
    ),
    (
        "aws-base-k8s-1.29",
        "cluster",
        "aws",
        [
            _pack("ubuntu-aws", "os", "22.04"),
            _pack("kubernetes", "k8s", "1.29.8", "apiServer:\n  auditLog: false\n"),
            _pack("cni-calico", "cni", "3.27.3"),
            _pack("csi-aws-ebs", "csi", "1.28.0"),
        ],
        "previous kubernetes line for legacy services on aws",
    ),
    (
        "gpu-ml-training",
        "add-on",
        "aws",
        [_pack("nvidia-gpu-operator", "addon", "24.3.0", "driver:\n  enabled: true\n", "helm")],
        "gpu machine learning training and inference with nvidia cuda",
    ),
    (
        "observability",
        "add-on",
        "all",
        [
            _pack("prometheus-operator", "addon", "58.2.0", "retention: 15d\n", "helm"),
            _pack("grafana-loki", "addon", "6.6.0", "", "helm"),
        ],
        "monitoring metrics logging and alerting",
    ),
    (
        "data-services",
        "add-on",
        "all",
        [
            _pack("postgres-operator", "addon", "1.12.2", "", "helm"),
            _pack("redis", "addon", "7.2.5", "", "helm"),
        ],
        "stateful databases postgres cache redis",
    ),
    (
        "vsphere-edge-k8s",
        "cluster",
        "vsphere",
        [
            _pack("ubuntu-vsphere", "os", "22.04"),
            _pack("kubernetes", "k8s", "1.30.4"),
            _pack("cni-cilium", "cni", "1.15.6"),
            _pack("csi-vsphere", "csi", "3.3.0"),
        ],
        "on-premises datacenter and edge workloads on vsphere",
    ),
]


def _cluster(
    project: Project,
    name: str,
    *,
    state: str,
    environment: str,
    profiles: list[str],
    pools: list[dict[str, Any]],
    health: str,
    conditions: list[dict[str, Any]] | None = None,
) -> str:
    uid = uid_for(project.uid, "cluster", name)
    templates = []
    for profile_name in profiles:
        profile = project.profiles[uid_for(project.uid, "profile", profile_name)]
        published = profile["spec"]["published"]
        templates.append(
            {
                "uid": profile["metadata"]["uid"],
                "name": profile_name,
                "type": published["type"],
                "cloudType": published["cloudType"],
                "profileVersion": profile["spec"]["version"],
                "packs": copy.deepcopy(published["packs"]),
            }
        )
    project.clusters[uid] = {
        "apiVersion": "v1",
        "kind": "SpectroCluster",
        "metadata": {
            "uid": uid,
            "name": name,
            "labels": {"environment": environment, "team": "platform"},
            "annotations": {"scope": "project", "projectUid": project.uid},
            "creationTimestamp": _T0,
            "lastModifiedTimestamp": _T0,
        },
        "spec": {
            "cloudType": "aws",
            "clusterType": "PureManage",
            "cloudConfigRef": {"kind": "AwsCloudConfig", "name": name, "uid": uid_for(uid, "cloudconfig")},
            "clusterProfileTemplates": templates,
        },
        "status": {"state": state, "conditions": conditions or []},
    }
    project.pools[uid] = pools
    project.health[uid] = {
        "state": health,
        "agentVersion": "4.8.2",
        "lastHeartBeatTimestamp": _T0,
        "conditions": [],
    }
    project.events[uid] = [_event(uid, name, "Normal", "ClusterCreated", "cluster was created", 0)]
    return uid


def _event(uid: str, name: str, severity: str, reason: str, message: str, n: int) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": uid_for(uid, "event", str(n), reason),
            "name": f"{name}.{n}",
            "creationTimestamp": _T0,
        },
        "involvedObject": {"kind": "spectrocluster", "name": name, "uid": uid},
        "relatedObject": {"kind": "spectrocluster", "name": name, "uid": uid},
        "reason": reason,
        "message": message,
        "severity": severity,
        "source": {"component": "palette-controller"},
    }


def pool(name: str, size: int, instance_type: str, *, control_plane: bool = False) -> dict[str, Any]:
    return {
        "poolConfig": {
            "name": name,
            "size": size,
            "labels": ["control-plane"] if control_plane else ["worker"],
            "isControlPlane": control_plane,
        },
        "cloudConfig": {"instanceType": instance_type},
    }


def seed_project(project_uid: str, *, fleet_size: int = FLEET_SIZE) -> Project:
    """A project with the demo catalog and clusters described in the module docstring."""
    project = Project(uid=project_uid)
    _seed_catalogue(project)
    _seed_clusters(project, fleet_size)
    return project


def _seed_catalogue(project: Project) -> None:
    for name, kind, cloud, packs, description in _PROFILE_DEFS:
        uid = uid_for(project.uid, "profile", name)
        project.profiles[uid] = {
            "apiVersion": "v1",
            "kind": "ClusterProfile",
            "metadata": {
                "uid": uid,
                "name": name,
                "labels": {"description": description},
                "annotations": {"description": description},
                "creationTimestamp": _T0,
            },
            "spec": {
                "version": "1.0.0",
                "published": {"name": name, "type": kind, "cloudType": cloud, "packs": packs},
                "versions": [{"uid": uid, "version": "1.0.0"}],
            },
            "status": {"isPublished": True},
        }
        for pack in packs:
            project.packs.append(_pack_metadata(pack, cloud, description))


# Longer than a function should be, on purpose: it is the demo inventory, one declaration
# per cluster, read top to bottom like a table; splitting it would scatter the table.
def _seed_clusters(project: Project, fleet_size: int) -> None:
    cp = pool("control-plane", 3, "m5.xlarge", control_plane=True)
    base = ["aws-base-k8s-1.30", "observability"]
    _cluster(
        project,
        "prod-payments",
        state="Running",
        environment="production",
        profiles=base,
        pools=[cp, pool("workers", 6, "m5.2xlarge")],
        health="Healthy",
    )
    _cluster(
        project,
        "prod-gpu-training",
        state="Running",
        environment="production",
        profiles=[*base, "gpu-ml-training"],
        pools=[cp, pool("gpu-workers", 4, "p4d.24xlarge")],
        health="Healthy",
    )
    sick = _cluster(
        project,
        "staging-web",
        state="Running",
        environment="staging",
        profiles=["aws-base-k8s-1.29", "observability"],
        pools=[cp, pool("workers", 3, "m5.large")],
        health="UnHealthy",
        conditions=[
            {
                "type": "NodesReady",
                "status": "False",
                "reason": "NodeNotReady",
                "message": "2 of 6 nodes are not ready",
            }
        ],
    )
    project.health[sick]["conditions"] = [{"type": "NodeHealth", "message": "node ip-10-0-1-7 is NotReady"}]
    project.events[sick] += [
        _event(sick, "staging-web", "Warning", "NodeNotReady", "node ip-10-0-1-7 stopped posting status", 1),
        _event(sick, "staging-web", "Warning", "BackOff", "pod api-7f9 in CrashLoopBackOff", 2),
    ]
    _cluster(
        project,
        "dev-provisioning",
        state="Provisioning",
        environment="development",
        profiles=base,
        pools=[pool("control-plane", 1, "t3.large", control_plane=True)],
        health="Unknown",
    )
    _cluster(
        project,
        "old-sandbox",
        state="Deleting",
        environment="development",
        profiles=base,
        pools=[pool("control-plane", 1, "t3.large", control_plane=True)],
        health="Unknown",
    )
    for i in range(fleet_size):
        _cluster(
            project,
            f"fleet-{i:03d}",
            state="Running",
            environment="development",
            profiles=base,
            pools=[pool("control-plane", 1, "t3.large", control_plane=True), pool("workers", 2, "t3.large")],
            health="Healthy",
        )


def _pack_metadata(pack: dict[str, Any], cloud: str, description: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PackMetadata",
        "metadata": {
            "uid": pack["packUid"],
            "name": pack["name"],
            "annotations": {"description": description},
        },
        "spec": {
            "name": pack["name"],
            "displayName": pack["name"],
            "layer": pack["layer"],
            "type": pack["type"],
            "cloudTypes": [cloud],
            "registries": [
                {
                    "uid": uid_for("registry", "public"),
                    "name": "Public Repo",
                    "latestVersion": pack["tag"],
                    "latestPackUid": pack["packUid"],
                }
            ],
        },
    }
