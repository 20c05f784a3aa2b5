"""Seed data for the sandbox cluster: two namespaces with something to look at.

``dev`` (``environment=development``) and ``payments`` (``environment=production``),
Deployments, Services, a postgres StatefulSet with its Secret, one Node, and a few Pods
with statuses written by hand. The workloads follow the project's policy (approved
registries, non-root, limits) except ``dev/worker``, which has no limits.

No controllers run in the sandbox, so the Pods a real cluster would have are written
here, one of them crash-looping so ``k8s_diagnose`` has something to find. Everything is
server-side applied by the ``sandbox-seed`` field manager, so seeding again converges
instead of failing (Pods, whose spec is immutable, are created once).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError

__all__ = ["SEED_MANAGER", "seed_objects", "seed_sandbox"]

JSON = dict[str, Any]
SEED_MANAGER = "sandbox-seed"

_OBJECTS = """
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {environment: development}}
---
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {environment: production}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dev, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 101}
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 100m, memory: 128Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dev, labels: {app: web}}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: dev, labels: {app: worker}}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
      - name: worker
        image: busybox:1.36
        command: [sh, -c, "process-queue"]
        resources: {requests: {cpu: 50m, memory: 64Mi}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: dev, labels: {app: web}}
data: {LOG_LEVEL: debug, FEATURE_FLAGS: new-checkout}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: payments, labels: {app: api}}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
      - name: api
        image: registry.example.com/payments/api:1.4.2
        ports: [{containerPort: 8080}]
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: 500m, memory: 512Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: payments, labels: {app: api}}
spec: {selector: {app: api}, ports: [{port: 8080, targetPort: 8080}]}
---
apiVersion: v1
kind: Secret
metadata: {name: postgres-credentials, namespace: payments, labels: {app: postgres}}
type: Opaque
stringData: {POSTGRES_USER: payments, POSTGRES_PASSWORD: sandbox-only-not-a-real-password}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, namespace: payments, labels: {app: postgres}}
spec:
  serviceName: postgres
  replicas: 1
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 999, fsGroup: 999}
      containers:
      - name: postgres
        image: postgres:16.4
        ports: [{containerPort: 5432}]
        envFrom: [{secretRef: {name: postgres-credentials}}]
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: "1", memory: 2Gi}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: postgres, namespace: payments, labels: {app: postgres}}
spec: {clusterIP: None, selector: {app: postgres}, ports: [{port: 5432, targetPort: 5432}]}
---
apiVersion: v1
kind: Node
metadata: {name: sandbox-node-1, labels: {node-role.kubernetes.io/worker: ""}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-7d9c5b-x2k4p, namespace: payments, labels: {app: api}}
spec:
  nodeName: sandbox-node-1
  containers:
  - name: api
    image: registry.example.com/payments/api:1.4.2
    resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: 500m, memory: 512Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-6f7b9d-q8r2m, namespace: dev, labels: {app: web}}
spec:
  nodeName: sandbox-node-1
  containers:
  - name: web
    image: nginx:1.27
    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 100m, memory: 128Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: worker-5c8d7f-zt9wl, namespace: dev, labels: {app: worker}}
spec:
  nodeName: sandbox-node-1
  containers:
  - name: worker
    image: busybox:1.36
    command: [sh, -c, "process-queue"]
    resources: {requests: {cpu: 50m, memory: 64Mi}}
---
apiVersion: v1
kind: Event
metadata: {name: worker-5c8d7f-zt9wl.backoff, namespace: dev}
involvedObject: {apiVersion: v1, kind: Pod, name: worker-5c8d7f-zt9wl, namespace: dev}
type: Warning
reason: BackOff
message: Back-off restarting failed container worker in pod worker-5c8d7f-zt9wl
source: {component: kubelet, host: sandbox-node-1}
firstTimestamp: NOW
lastTimestamp: NOW
count: 7
"""

# Status is a subresource (apply ignores it): written afterwards, by kind/namespace/name.
_STATUSES = """
- kind: Node
  name: sandbox-node-1
  status:
    capacity: {cpu: "8", memory: 32Gi, pods: "110"}
    allocatable: {cpu: 7800m, memory: 30Gi, pods: "110"}
    conditions:
    - {type: Ready, status: "True", reason: KubeletReady, message: kubelet is posting ready status,
       lastHeartbeatTime: NOW, lastTransitionTime: NOW}
    - {type: MemoryPressure, status: "False", reason: KubeletHasSufficientMemory,
       lastHeartbeatTime: NOW, lastTransitionTime: NOW}
    nodeInfo: {kubeletVersion: v1.30.14, osImage: Sandbox Linux, architecture: amd64, operatingSystem: linux,
               containerRuntimeVersion: "none://sandbox", kernelVersion: "", kubeProxyVersion: "",
               machineID: "", systemUUID: "", bootID: ""}
- kind: Pod
  namespace: payments
  name: api-7d9c5b-x2k4p
  status:
    phase: Running
    startTime: NOW
    conditions:
    - {type: PodScheduled, status: "True", lastTransitionTime: NOW}
    - {type: Ready, status: "True", lastTransitionTime: NOW}
    containerStatuses:
    - {name: api, ready: true, restartCount: 0, image: "registry.example.com/payments/api:1.4.2", imageID: "",
       state: {running: {startedAt: NOW}}}
- kind: Pod
  namespace: dev
  name: web-6f7b9d-q8r2m
  status:
    phase: Running
    startTime: NOW
    conditions:
    - {type: PodScheduled, status: "True", lastTransitionTime: NOW}
    - {type: Ready, status: "True", lastTransitionTime: NOW}
    containerStatuses:
    - {name: web, ready: true, restartCount: 0, image: "nginx:1.27", imageID: "",
       state: {running: {startedAt: NOW}}}
- kind: Pod
  namespace: dev
  name: worker-5c8d7f-zt9wl
  status:
    phase: Running
    startTime: NOW
    conditions:
    - {type: PodScheduled, status: "True", lastTransitionTime: NOW}
    - {type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: NOW}
    containerStatuses:
    - name: worker
      ready: false
      restartCount: 7
      image: "busybox:1.36"
      imageID: ""
      state: {waiting: {reason: CrashLoopBackOff, message: back-off 5m0s restarting failed container}}
      lastState: {terminated: {exitCode: 1, reason: Error, startedAt: NOW, finishedAt: NOW}}
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_objects(now: str | None = None) -> list[JSON]:
    """The objects, in apply order (namespaces first)."""
    text = _OBJECTS.replace("NOW", now or _now())
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _statuses(now: str) -> list[JSON]:
    loaded: list[JSON] = yaml.safe_load(_STATUSES.replace("NOW", now))
    return loaded


def seed_sandbox(kubeconfig: Path, *, context: str = "sandbox") -> int:
    """Apply the seed objects and statuses; returns the number of objects written."""
    api = k8s_config.new_client_from_config(str(kubeconfig), context=context, persist_config=False)  # type: ignore[no-untyped-call]
    try:
        cache = str(kubeconfig.parent / "discovery-cache.json")
        dynamic = DynamicClient(api, cache_file=cache)  # type: ignore[no-untyped-call]
        now = _now()
        objects = seed_objects(now)
        for obj in objects:
            resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            if obj["kind"] == "Pod":
                # A pod's spec is immutable: one seeded before stays as it is.
                with contextlib.suppress(ConflictError):
                    dynamic.create(resource, body=obj, field_manager=SEED_MANAGER)  # type: ignore[no-untyped-call]
                continue
            dynamic.server_side_apply(  # type: ignore[no-untyped-call]
                resource, body=obj, field_manager=SEED_MANAGER, force_conflicts=True
            )
        core = k8s.CoreV1Api(api)
        for entry in _statuses(now):
            if entry["kind"] == "Node":
                core.patch_node_status(entry["name"], {"status": entry["status"]})
            else:
                core.patch_namespaced_pod_status(
                    entry["name"], entry["namespace"], {"status": entry["status"]}
                )
        return len(objects)
    finally:
        api.close()
