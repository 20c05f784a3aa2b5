"""Seed data for the sandbox cluster: nodes, and two namespaces with something to look at.

Three simulated nodes (kwok), ``dev`` (``environment=development``) and ``payments``
(``environment=production``) with Deployments, Services, a ConfigMap, and a postgres
StatefulSet with its Secret and a pre-provisioned, pre-bound volume. The workloads follow
the project's policy (approved registries, non-root, limits) except ``dev/worker``, which
has no limits and whose pods are annotated to crash-loop (``gateway.local.kwok``): its
restart count really climbs, its events really flow, and ``k8s_logs`` shows why it dies.

The controllers do the rest: ReplicaSets, pods, scheduling, endpoints. Everything here is
server-side applied by the ``sandbox-seed`` field manager, so seeding again converges;
nodes are created once, with their capacity, as a kubelet registers its node.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gateway.local.client import SandboxClient
from gateway.local.kwok import MANAGED_NODE_ANNOTATION, SIMULATE_ANNOTATION

__all__ = [
    "SEED_NODES",
    "alive_summary",
    "node_object",
    "schedulable",
    "seed_objects",
    "seed_sandbox",
    "wait_until_alive",
    "wait_until_schedulable",
]

JSON = dict[str, Any]
SEED_NODES = ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3")
_NOT_READY_TAINT = "node.kubernetes.io/not-ready"
_WORKLOADS = {"Deployment", "StatefulSet"}

_OBJECTS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: dev, labels: {{environment: development}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: payments, labels: {{environment: production}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: dev, labels: {{app: web}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 101}}
      containers:
      - name: web
        image: nginx:1.27
        ports: [{{containerPort: 80}}]
        securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
        resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{cpu: 100m, memory: 128Mi}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: dev, labels: {{app: web}}}}
spec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: 80}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: worker, namespace: dev, labels: {{app: worker}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: worker}}}}
  template:
    metadata:
      labels: {{app: worker}}
      annotations: {{{SIMULATE_ANNOTATION}: crash-loop}}
    spec:
      containers:
      - name: worker
        image: busybox:1.36
        command: [sh, -c, "process-queue"]
        resources: {{requests: {{cpu: 50m, memory: 64Mi}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: dev, labels: {{app: web}}}}
data: {{LOG_LEVEL: debug, FEATURE_FLAGS: new-checkout}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: payments, labels: {{app: api}}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 10001}}
      containers:
      - name: api
        image: registry.example.com/payments/api:1.4.2
        ports: [{{containerPort: 8080}}]
        securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
        resources: {{requests: {{cpu: 250m, memory: 256Mi}}, limits: {{cpu: 500m, memory: 512Mi}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: payments, labels: {{app: api}}}}
spec: {{selector: {{app: api}}, ports: [{{port: 8080, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: postgres-credentials, namespace: payments, labels: {{app: postgres}}}}
type: Opaque
stringData: {{POSTGRES_USER: payments, POSTGRES_PASSWORD: sandbox-only-not-a-real-password}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: payments-postgres-data, labels: {{app: postgres}}}}
spec:
  capacity: {{storage: 10Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {{path: /var/lib/sandbox/payments-postgres}}
  claimRef: {{namespace: payments, name: data-postgres-0}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data-postgres-0, namespace: payments, labels: {{app: postgres}}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: payments-postgres-data
  resources: {{requests: {{storage: 10Gi}}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: postgres, namespace: payments, labels: {{app: postgres}}}}
spec:
  serviceName: postgres
  replicas: 1
  selector: {{matchLabels: {{app: postgres}}}}
  template:
    metadata: {{labels: {{app: postgres}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 999, fsGroup: 999}}
      containers:
      - name: postgres
        image: postgres:16.4
        ports: [{{containerPort: 5432}}]
        envFrom: [{{secretRef: {{name: postgres-credentials}}}}]
        securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
        resources: {{requests: {{cpu: 500m, memory: 1Gi}}, limits: {{cpu: "1", memory: 2Gi}}}}
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], storageClassName: "", resources: {{requests: {{storage: 10Gi}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: postgres, namespace: payments, labels: {{app: postgres}}}}
spec: {{clusterIP: None, selector: {{app: postgres}}, ports: [{{port: 5432, targetPort: 5432}}]}}
"""


def node_object(name: str, *, zone: str = "sandbox-a", annotations: dict[str, str] | None = None) -> JSON:
    """A node kwok simulates, registered with its capacity as a kubelet would."""
    key, value = MANAGED_NODE_ANNOTATION
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, **(annotations or {})},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/worker": "",
                "topology.kubernetes.io/zone": zone,
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": {**capacity, "cpu": "7800m", "memory": "30Gi"}},
    }


def seed_objects() -> list[JSON]:
    """The objects, in apply order (namespaces first)."""
    return [doc for doc in yaml.safe_load_all(_OBJECTS) if doc]


def seed_sandbox(kubeconfig: Path, *, context: str = "sandbox", nodes_within: float | None = 60.0) -> int:
    """Register the nodes, wait (``nodes_within`` seconds; None: not at all, as on a cluster
    without kwok) until they are schedulable, and apply the objects; returns the number of
    objects written."""
    with SandboxClient(kubeconfig, context=context) as client:
        nodes = [node_object(name, zone=f"sandbox-{'abc'[i % 3]}") for i, name in enumerate(SEED_NODES)]
        client.create_all(nodes)
        if nodes_within is not None:
            wait_until_schedulable(client, SEED_NODES, timeout=nodes_within)
        objects = seed_objects()
        client.apply_all(o for o in objects if o["kind"] == "Namespace")
        client.apply_all(o for o in objects if o["kind"] not in _WORKLOADS | {"Namespace"})
        if nodes_within is not None:
            # The claim is bound before its StatefulSet's pod is scheduled, not retried after.
            client.wait_for(
                lambda: ((client.get("v1", "PersistentVolumeClaim", "data-postgres-0", namespace="payments")
                          or {}).get("status") or {}).get("phase") == "Bound",
                timeout=nodes_within,
                what="the postgres volume claim being bound",
            )  # fmt: skip
        client.apply_all(o for o in objects if o["kind"] in _WORKLOADS)
        return len(nodes) + len(objects)


def schedulable(node: JSON | None) -> bool:
    """Ready, and no longer tainted not-ready by the node lifecycle controller: pods
    created now are scheduled instead of failing first."""
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    return node is not None and _ready(node) and not any(t.get("key") == _NOT_READY_TAINT for t in taints)


def wait_until_schedulable(client: SandboxClient, names: Iterable[str], *, timeout: float) -> None:
    """Wait until kwok has brought the nodes ``names`` up (a fresh node starts NotReady)."""
    pending = set(names)

    def done() -> bool:
        pending.difference_update([n for n in list(pending) if schedulable(client.get("v1", "Node", n))])
        return not pending

    client.wait_for(done, timeout=timeout, what=f"{len(pending)} simulated nodes becoming Ready")


def alive_summary(client: SandboxClient) -> JSON:
    """Nodes Ready and seeded pods Running, by counting (one page each: a seed is small)."""
    nodes = next(client.pages("v1", "Node", label_selector="type=kwok"), [])
    ready = sum(1 for n in nodes if _ready(n))
    pods = [p for ns in ("dev", "payments") for p in next(client.pages("v1", "Pod", namespace=ns), [])]
    running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    return {"nodes": len(nodes), "nodes_ready": ready, "pods": len(pods), "pods_running": running}


def wait_until_alive(kubeconfig: Path, *, context: str = "sandbox", timeout: float = 90.0) -> JSON:
    """Wait until the seeded nodes are Ready and every seeded pod runs (7: web 2, worker 1,
    api 3, postgres 1); the summary at that point."""
    wanted = 7
    with SandboxClient(kubeconfig, context=context) as client:

        def settled() -> JSON | None:
            summary = alive_summary(client)
            done = summary["nodes_ready"] >= len(SEED_NODES) and summary["pods_running"] >= wanted
            return summary if done else None

        return client.wait_for(settled, timeout=timeout, what="the seeded workloads")


def _ready(node: JSON) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )
