"""A large sandbox: ``gateway sandbox seed --scale N`` adds N pods' worth of workloads.

N pods over ``ceil(N / 100)`` namespaces (``scale-000``...) and ``ceil(N / 25)`` simulated
nodes (``scale-node-0001``...) by default, so ``--scale 5000`` is 5,000 pods, 50
namespaces and 200 nodes. The pods are not written here: each namespace gets Deployments
of ``replicas`` pods and the controllers create, schedule and run them, as in a real
cluster; ``wait`` counts them Running page by page. Every object carries the label
``sandbox.policy-gateway.dev/seed=scale``. Seeding again with the same plan converges.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.local.client import SandboxClient
from gateway.local.sandbox_seed import node_object, wait_until_schedulable

__all__ = ["SCALE_LABEL", "ScalePlan", "running_pods", "seed_scale"]

JSON = dict[str, Any]
SCALE_LABEL = ("sandbox.policy-gateway.dev/seed", "scale")
_PODS_PER_NODE = 25
_PODS_PER_NAMESPACE = 100
_NODES_WITHIN = 300.0


@dataclass(frozen=True)
class ScalePlan:
    pods: int
    nodes: int
    namespaces: int
    replicas: int = 10

    @classmethod
    def for_pods(cls, pods: int, *, nodes: int | None = None, namespaces: int | None = None) -> ScalePlan:
        if pods < 1:
            raise ValueError("--scale needs at least one pod")
        return cls(
            pods=pods,
            nodes=nodes or math.ceil(pods / _PODS_PER_NODE),
            namespaces=namespaces or math.ceil(pods / _PODS_PER_NAMESPACE),
        )

    def namespace_names(self) -> list[str]:
        return [f"scale-{i:03d}" for i in range(self.namespaces)]

    def node_names(self) -> list[str]:
        return [f"scale-node-{i:04d}" for i in range(1, self.nodes + 1)]

    def deployments(self) -> Iterator[tuple[str, str, int]]:
        """(namespace, name, replicas): the pods spread evenly, ``replicas`` per Deployment."""
        base, extra = divmod(self.pods, self.namespaces)
        for index, namespace in enumerate(self.namespace_names()):
            left = base + (1 if index < extra else 0)
            number = 0
            while left > 0:
                count = min(self.replicas, left)
                yield namespace, f"app-{number:03d}", count
                left -= count
                number += 1


def _labels() -> dict[str, str]:
    return {SCALE_LABEL[0]: SCALE_LABEL[1]}


def _namespace(name: str, index: int) -> JSON:
    environment = "production" if index % 5 == 4 else "development"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**_labels(), "environment": environment}},
    }


def _deployment(namespace: str, name: str, replicas: int) -> JSON:
    labels = {**_labels(), "app": name}
    container = {
        "name": "app",
        "image": "registry.example.com/scale/app:1.0.0",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "50m", "memory": "64Mi"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                },
            },
        },
    }


def running_pods(client: SandboxClient) -> int:
    """Pods of the scale seed that are Running, counted a page at a time."""
    selector = f"{SCALE_LABEL[0]}={SCALE_LABEL[1]}"
    return client.count("v1", "Pod", label_selector=selector, field_selector="status.phase=Running")


def seed_scale(
    kubeconfig: Path, plan: ScalePlan, *, context: str = "sandbox", wait_seconds: float | None = None
) -> JSON:
    """Register the nodes, apply namespaces and Deployments; with ``wait_seconds``, wait
    until every planned pod runs. Returns what was done and how long it took."""
    began = time.monotonic()
    with SandboxClient(kubeconfig, context=context) as client:
        zones = "abc"
        nodes = client.create_all(
            node_object(name, zone=f"sandbox-{zones[i % 3]}") for i, name in enumerate(plan.node_names())
        )
        # Pods created before their nodes are up would first fail to schedule, by the thousand.
        wait_until_schedulable(client, plan.node_names(), timeout=_NODES_WITHIN)
        client.apply_all(_namespace(name, i) for i, name in enumerate(plan.namespace_names()))
        deployments = client.apply_all(_deployment(*entry) for entry in plan.deployments())
        result: JSON = {
            "nodes_registered": nodes,
            "namespaces": plan.namespaces,
            "deployments": deployments,
            "pods_planned": plan.pods,
        }
        if wait_seconds is not None:
            client.wait_for(
                lambda: running_pods(client) >= plan.pods or None,
                timeout=wait_seconds,
                what=f"{plan.pods} running pods",
                interval=2.0,
            )
            result["pods_running"] = running_pods(client)
    result["seconds"] = round(time.monotonic() - began, 1)
    return result
