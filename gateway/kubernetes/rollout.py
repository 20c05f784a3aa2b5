"""The rollout a template change started, as its controller reports it.

After ``k8s_restart`` writes a new pod-template annotation, the workload's controller
observes the new generation and starts replacing pods: a Deployment gets a new revision
and ReplicaSet, a StatefulSet an update revision, a DaemonSet updates node by node. The
report waits a moment (``OBSERVE_SECONDS`` at most) for the controller to observe the
change and says what it sees then; ``observed: false`` means no controller picked it up
in that time (none runs, or it is busy), not that the write failed.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from gateway.errors import BackendError
from gateway.kubernetes.client import KubeClient
from gateway.kubernetes.kinds import KindResolver, ResourceKind

__all__ = ["OBSERVE_SECONDS", "rollout_report"]

JSON = dict[str, Any]
OBSERVE_SECONDS = 5.0
_POLL_SECONDS = 0.25
_REVISION = "deployment.kubernetes.io/revision"


async def rollout_report(
    client: KubeClient, kinds: KindResolver, kind: ResourceKind, written: JSON, *, restarted_at: str
) -> JSON:
    """What the controller did with the generation ``written`` carries."""
    meta = written.get("metadata") or {}
    generation = meta.get("generation")
    live = written
    deadline = time.monotonic() + OBSERVE_SECONDS
    while not _observed(live, generation) and time.monotonic() < deadline:
        await anyio.sleep(_POLL_SECONDS)
        try:
            live = await client.get(kind, str(meta.get("name")), meta.get("namespace"))
        except BackendError:
            break  # the write is done; the report says what is known
    status = live.get("status") or {}
    report: JSON = {
        "restarted_at": restarted_at,
        "generation": generation,
        "observed_generation": status.get("observedGeneration"),
        "observed": _observed(live, generation),
    }
    if kind.kind == "Deployment":
        report |= await _deployment(client, kinds, live)
    elif kind.kind == "StatefulSet":
        report |= {
            "update_revision": status.get("updateRevision"),
            "current_revision": status.get("currentRevision"),
            "replicas": status.get("replicas"),
            "updated_replicas": status.get("updatedReplicas", 0),
            "ready_replicas": status.get("readyReplicas", 0),
        }
    elif kind.kind == "DaemonSet":
        report |= {
            "desired": status.get("desiredNumberScheduled"),
            "updated": status.get("updatedNumberScheduled", 0),
            "ready": status.get("numberReady", 0),
        }
    return report


def _observed(obj: JSON, generation: Any) -> bool:
    seen = (obj.get("status") or {}).get("observedGeneration")
    return isinstance(seen, int) and isinstance(generation, int) and seen >= generation


async def _deployment(client: KubeClient, kinds: KindResolver, live: JSON) -> JSON:
    meta, status = live.get("metadata") or {}, live.get("status") or {}
    revision = (meta.get("annotations") or {}).get(_REVISION)
    progressing: JSON = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    report: JSON = {
        "revision": revision,
        "new_replica_set": await _replica_set_of(client, kinds, live, revision),
        "replicas": status.get("replicas", 0),
        "updated_replicas": status.get("updatedReplicas", 0),
        "ready_replicas": status.get("readyReplicas", 0),
        "available_replicas": status.get("availableReplicas", 0),
        "progress": progressing.get("reason"),
    }
    return report


async def _replica_set_of(
    client: KubeClient, kinds: KindResolver, deployment: JSON, revision: str | None
) -> str | None:
    """The ReplicaSet of ``revision``: the deployment's own (owner uid), one page at most."""
    meta = deployment.get("metadata") or {}
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if revision is None or not labels:
        return None
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    try:
        kind = await kinds.for_object("apps/v1", "ReplicaSet")
        page = await client.list(kind, meta.get("namespace"), label_selector=selector, limit=100)
    except BackendError:
        return None  # e.g. not allowed to list ReplicaSets: the rest of the report stands
    for rs in page.get("items") or []:
        rs_meta = rs.get("metadata") or {}
        owners = {o.get("uid") for o in rs_meta.get("ownerReferences") or []}
        if meta.get("uid") in owners and (rs_meta.get("annotations") or {}).get(_REVISION) == revision:
            return str(rs_meta.get("name"))
    return None
