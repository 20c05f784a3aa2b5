"""``k8s_scale``, ``k8s_restart`` and ``k8s_set_resources``: changes to one workload.

``prepare`` reads the live object (before-image) and asks the server for the result of
the change with ``dryRun=All`` (after-image); nothing is written. ``k8s_scale`` goes
through the ``/scale`` subresource, as ``kubectl scale`` and autoscalers do, so any kind
that serves one (custom resources included) can be scaled, with the RBAC permission on
``<resource>/scale``; its after-image is the object with the new count where the kind
keeps it (``spec.replicas``, or a CRD's ``specReplicasPath``).

``execute`` sends the same change, guarded by what policy judged (``guards``): the
object's uid, generation (its spec), labels and annotations, not its resourceVersion, so
status updates by controllers while the call waited for approval do not fail it, and a
spec change by someone else does. ``k8s_restart`` reports the rollout it started.
"""

from __future__ import annotations

from typing import Any

from gateway.changes import Change, ChangeKind
from gateway.contracts import utc_now
from gateway.errors import BackendError, Forbidden, InvalidArguments, NotFound
from gateway.kubernetes.args import RestartArgs, ScaleArgs, SetResourcesArgs, WorkloadArgs
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.client import PatchType
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.guards import JudgedState, guarded_write, object_ref
from gateway.kubernetes.images import policy_image
from gateway.kubernetes.kinds import ResourceKind
from gateway.kubernetes.quantities import as_written
from gateway.kubernetes.rollout import rollout_report
from gateway.kubernetes.tools_read import judged_kind, kube_spec
from gateway.kubernetes.views import summary
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["RESTARTED_AT", "PatchTools", "with_value", "workload_patch"]

JSON = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_RESTARTABLE = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet")}
_TEMPLATED = _RESTARTABLE | {("apps", "ReplicaSet"), ("", "ReplicationController")}
_BUILTIN_SCALABLE = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "ReplicaSet"),
                     ("", "ReplicationController")}  # fmt: skip
_SPEC_REPLICAS = ("spec", "replicas")


class PatchTools:
    def __init__(self, clusters: ClusterPool) -> None:
        self.clusters = clusters

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            kube_spec(
                "k8s_scale",
                "Scale a workload",
                "Set the replica count of a Deployment, StatefulSet, ReplicaSet or any kind with a "
                "scale subresource (custom resources included), through that subresource.",
                ScaleArgs,
                self.prepare_scale,
                self.scale,
                effect="write",
            ),
            kube_spec(
                "k8s_restart",
                "Restart a workload",
                "Rolling restart of a Deployment, StatefulSet or DaemonSet (as `kubectl rollout restart`); "
                "reports the rollout it started.",
                RestartArgs,
                self.prepare_restart,
                self.restart,
                effect="write",
                idempotent=False,
            ),
            kube_spec(
                "k8s_set_resources",
                "Set container resources",
                "Set CPU/memory (or other) requests and limits of one container in a workload's pod "
                "template. Resources not named are left as they are.",
                SetResourcesArgs,
                self.prepare_set_resources,
                self.set_resources,
                effect="write",
            ),
        ]

    # -- prepare -------------------------------------------------------------------------

    async def prepare_scale(self, args: ScaleArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind, current = await _workload(backend, args, "k8s_scale")
        if "scale" not in kind.subresources:
            raise InvalidArguments(
                f"k8s_scale: {kind.kind} cannot be scaled: {kind.plural} has no scale subresource"
            )
        path = await _replicas_path(backend, kind)
        target = await backend.target(kind, namespace=args.namespace, name=args.name, fresh=True)
        scale = await backend.client.patch(
            kind, args.name, args.namespace, _scale_body(args.replicas), patch_type="merge",
            field_manager=backend.field_manager, dry_run=True, subresource="scale",
        )  # fmt: skip
        replicas = (scale.get("spec") or {}).get("replicas", args.replicas)
        after = with_value(current, path, replicas)
        return [Prepared(target=target, object=policy_image(after), current=policy_image(current))]

    async def prepare_restart(self, args: RestartArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind, current = await _workload(backend, args, "k8s_restart")
        if (kind.group, kind.kind) not in _RESTARTABLE:
            raise InvalidArguments(
                "k8s_restart: only Deployments, StatefulSets and DaemonSets can be restarted"
            )
        return await _prepared(backend, kind, args, current, workload_patch(args, restarted_at=utc_now()))

    async def prepare_set_resources(self, args: SetResourcesArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind, current = await _workload(backend, args, "k8s_set_resources")
        if (kind.group, kind.kind) not in _TEMPLATED:
            raise InvalidArguments(
                "k8s_set_resources: supported kinds are Deployment, StatefulSet, DaemonSet, ReplicaSet"
            )
        containers = ((current.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []
        names = [c.get("name") for c in containers]
        if args.container not in names:
            raise InvalidArguments(
                f"k8s_set_resources: {kind.kind} {args.name!r} has no container {args.container!r} "
                f"(containers: {', '.join(str(n) for n in names) or 'none'})"
            )
        return await _prepared(backend, kind, args, current, workload_patch(args, restarted_at=None))

    # -- execute -------------------------------------------------------------------------

    async def scale(self, args: ScaleArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target, judged = await _judged(backend, ctx)

        async def write(version: str) -> JSON:
            body = {**_scale_body(args.replicas), "metadata": {"resourceVersion": version}}
            return await backend.client.patch(
                kind, args.name, target.namespace, body, patch_type="merge",
                field_manager=backend.field_manager, dry_run=False, subresource="scale",
            )  # fmt: skip

        before = ctx.call.actions[0].current or {}
        path, previous = await _previous_replicas(backend, kind, before)
        seen: list[JSON] = []
        result = await _guarded(backend, kind, args.name, target.namespace, judged, write, seen)
        replicas_path = list(path or _SPEC_REPLICAS)
        after = await _after_scale(backend, kind, args)
        _journal(ctx, "scaled", seen, after, _scale_body(args.replicas), {"replicas_path": replicas_path})
        return {
            "cluster": target.cluster,
            "scaled": {
                **summary(before),
                "resourceVersion": (result.get("metadata") or {}).get("resourceVersion"),
                "replicas": (result.get("spec") or {}).get("replicas"),
                "previous_replicas": previous,
            },
        }

    async def restart(self, args: RestartArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target, judged = await _judged(backend, ctx)
        after = ctx.call.actions[0].object or {}
        template_meta = ((after.get("spec") or {}).get("template") or {}).get("metadata") or {}
        stamp = (template_meta.get("annotations") or {}).get(RESTARTED_AT)
        if not stamp:
            raise BackendError("the judged restart has no timestamp; nothing was changed")
        patch = workload_patch(args, restarted_at=stamp)
        seen: list[JSON] = []
        result = await _patch(backend, kind, args, target.namespace, judged, patch, seen)
        _journal(ctx, "restarted", seen, result, patch[0], {"restarted_at": stamp})
        rollout = await rollout_report(backend.client, backend.kinds, kind, result, restarted_at=str(stamp))
        return {"cluster": target.cluster, "restarted": summary(result), "rollout": rollout}

    async def set_resources(self, args: SetResourcesArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target, judged = await _judged(backend, ctx)
        patch = workload_patch(args, restarted_at=None)
        seen: list[JSON] = []
        result = await _patch(backend, kind, args, target.namespace, judged, patch, seen)
        _journal(ctx, "resources_set", seen, result, patch[0], {"container": args.container})
        return {"cluster": target.cluster, "patched": summary(result)}


def workload_patch(args: WorkloadArgs, *, restarted_at: str | None) -> tuple[JSON, PatchType]:
    """The patch a template tool sends, and its type; the same in prepare and execute."""
    if isinstance(args, RestartArgs):
        return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}, "merge"
    if isinstance(args, SetResourcesArgs):
        resources = {k: v for k, v in (("requests", args.requests), ("limits", args.limits)) if v}
        container = {"name": args.container, "resources": resources}
        # Strategic merge matches containers by name, so the others are left alone.
        return {"spec": {"template": {"spec": {"containers": [container]}}}}, "strategic"
    raise BackendError(f"{type(args).__name__} is not a template patch")


def _scale_body(replicas: int) -> JSON:
    return {"spec": {"replicas": replicas}}


def with_value(obj: JSON, path: tuple[str, ...], value: Any) -> JSON:
    """A copy of ``obj`` with ``value`` at ``path``; only the dicts along the path are copied."""
    out = dict(obj)
    node = out
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    node[path[-1]] = value
    return out


async def _workload(backend: KubeBackend, args: WorkloadArgs, tool: str) -> tuple[ResourceKind, JSON]:
    kind = await backend.kinds.resolve(args.kind)
    if not kind.namespaced:
        raise InvalidArguments(f"{tool}: {kind.kind} is not a namespaced workload")
    current = await backend.client.get(kind, args.name, args.namespace)
    return kind, current


async def _prepared(
    backend: KubeBackend, kind: ResourceKind, args: WorkloadArgs, current: JSON, patch: tuple[JSON, PatchType]
) -> list[Prepared]:
    target = await backend.target(kind, namespace=args.namespace, name=args.name, fresh=True)
    body, patch_type = patch
    after = await backend.client.patch(
        kind, args.name, args.namespace, body, patch_type=patch_type,
        field_manager=backend.field_manager, dry_run=True,
    )  # fmt: skip
    image = policy_image(as_written(after, body))
    return [Prepared(target=target, object=image, current=policy_image(current))]


async def _replicas_path(backend: KubeBackend, kind: ResourceKind) -> tuple[str, ...]:
    """Where ``kind`` keeps the count its scale subresource sets."""
    if (kind.group, kind.kind) in _BUILTIN_SCALABLE:
        return _SPEC_REPLICAS
    crd_kind = await backend.kinds.for_object("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    crd_name = f"{kind.plural}.{kind.group}"
    try:
        crd = await backend.client.get(crd_kind, crd_name, None)
    except NotFound as exc:
        raise InvalidArguments(
            f"k8s_scale: {kind.kind} is served by an aggregated API, so the gateway cannot tell "
            "which field its scale subresource changes"
        ) from exc
    except Forbidden as exc:
        raise Forbidden(
            f"k8s_scale of a {kind.kind} needs read access to CustomResourceDefinition {crd_name} "
            f"to find its replica field: {exc}"
        ) from exc
    for version in (crd.get("spec") or {}).get("versions") or []:
        if version.get("name") == kind.version:
            scale = (version.get("subresources") or {}).get("scale") or {}
            path = str(scale.get("specReplicasPath") or "")
            if path.startswith(".spec."):
                return tuple(path.removeprefix(".").split("."))
    raise InvalidArguments(
        f"k8s_scale: CustomResourceDefinition {crd_name} declares no scale subresource for {kind.version}"
    )


async def _judged(backend: KubeBackend, ctx: ExecutionContext) -> tuple[ResourceKind, Any, JudgedState]:
    kind, target = await judged_kind(backend, ctx)
    current = ctx.call.actions[0].current
    if not (current or {}).get("metadata", {}).get("uid"):
        raise BackendError("the judged action has no object identity; nothing was changed")
    return kind, target, JudgedState.of(current)


async def _patch(
    backend: KubeBackend,
    kind: ResourceKind,
    args: WorkloadArgs,
    namespace: str | None,
    judged: JudgedState,
    patch: tuple[JSON, PatchType],
    seen: list[JSON],
) -> JSON:
    async def write(version: str) -> JSON:
        body = {**patch[0], "metadata": {"resourceVersion": version}}
        return await backend.client.patch(
            kind, args.name, namespace, body, patch_type=patch[1],
            field_manager=backend.field_manager, dry_run=False,
        )  # fmt: skip

    return await _guarded(backend, kind, args.name, namespace, judged, write, seen)


async def _guarded(
    backend: KubeBackend,
    kind: ResourceKind,
    name: str,
    namespace: str | None,
    judged: JudgedState,
    write: Any,
    seen: list[JSON],
) -> JSON:
    """The guarded write; ``seen`` gets the live object it found (the journal's before-image)."""
    result: JSON = await guarded_write(
        judged,
        lambda: backend.client.get(kind, name, namespace),
        write,
        what=object_ref(kind.kind, name, namespace),
        on_read=seen.append,
    )
    return result


async def _previous_replicas(
    backend: KubeBackend, kind: ResourceKind, before: JSON
) -> tuple[tuple[str, ...] | None, Any]:
    """Where the count lives and the judged count, for the report and the journal: when
    they cannot be found, they are None."""
    try:
        path = await _replicas_path(backend, kind)
    except (BackendError, InvalidArguments):
        return None, None
    value: Any = before
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return path, value


def _journal(
    ctx: ExecutionContext, kind: ChangeKind, seen: list[JSON], after: JSON | None, written: JSON, detail: JSON
) -> None:
    """Report the change for the journal: the object as the write found it and left it."""
    change = Change(
        index=0,
        kind=kind,
        backend="kubernetes",
        target=ctx.call.actions[0].target,
        before=seen[-1],
        after=after,
        written=written,
        detail=detail,
    )
    ctx.changes.add(change)


async def _after_scale(backend: KubeBackend, kind: ResourceKind, args: ScaleArgs) -> JSON | None:
    """The object right after a scale (``/scale`` answers with a Scale only); ``None`` when it
    cannot be read, and a rollback then cannot rule out later changes."""
    try:
        return await backend.client.get(kind, args.name, args.namespace)
    except BackendError:
        return None
