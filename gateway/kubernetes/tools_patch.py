"""``k8s_scale``, ``k8s_restart`` and ``k8s_set_resources``: patches of one workload.

Each patch is built once, in ``prepare``, from the live object, and carries its
``resourceVersion``: the server dry-runs it for policy, and ``execute`` sends the same
patch (read back from the judged after-image where it holds a value chosen at prepare
time, like the restart timestamp). If the workload changed in between, the server
refuses with a Conflict and nothing is written.
"""

from __future__ import annotations

from typing import Any

from gateway.contracts import utc_now
from gateway.errors import BackendError, Conflict, InvalidArguments
from gateway.kubernetes.args import RestartArgs, ScaleArgs, SetResourcesArgs, WorkloadArgs
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.client import PatchType
from gateway.kubernetes.failures import changed_since_judged
from gateway.kubernetes.images import policy_image
from gateway.kubernetes.kinds import ResourceKind
from gateway.kubernetes.quantities import as_written
from gateway.kubernetes.tools_read import judged_kind, kube_spec
from gateway.kubernetes.views import summary
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["RESTARTED_AT", "PatchTools", "workload_patch"]

JSON = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_RESTARTABLE = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet")}
_TEMPLATED = _RESTARTABLE | {("apps", "ReplicaSet"), ("", "ReplicationController")}


class PatchTools:
    def __init__(self, backend: KubeBackend) -> None:
        self.backend = backend

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            kube_spec(
                "k8s_scale",
                "Scale a workload",
                "Set the replica count of a Deployment, StatefulSet, ReplicaSet or other scalable kind.",
                ScaleArgs,
                self.prepare_scale,
                self.execute,
                effect="write",
            ),
            kube_spec(
                "k8s_restart",
                "Restart a workload",
                "Rolling restart of a Deployment, StatefulSet or DaemonSet (as `kubectl rollout restart`).",
                RestartArgs,
                self.prepare_restart,
                self.execute,
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
                self.execute,
                effect="write",
            ),
        ]

    # -- prepare -------------------------------------------------------------------------

    async def prepare_scale(self, args: ScaleArgs) -> list[Prepared]:
        kind, current = await self._workload(args, "k8s_scale")
        if "scale" not in kind.subresources:
            raise InvalidArguments(f"k8s_scale: {kind.kind} cannot be scaled (it has no scale subresource)")
        return await self._prepared(kind, args, current, workload_patch(args, restarted_at=None))

    async def prepare_restart(self, args: RestartArgs) -> list[Prepared]:
        kind, current = await self._workload(args, "k8s_restart")
        if (kind.group, kind.kind) not in _RESTARTABLE:
            raise InvalidArguments(
                "k8s_restart: only Deployments, StatefulSets and DaemonSets can be restarted"
            )
        return await self._prepared(kind, args, current, workload_patch(args, restarted_at=utc_now()))

    async def prepare_set_resources(self, args: SetResourcesArgs) -> list[Prepared]:
        kind, current = await self._workload(args, "k8s_set_resources")
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
        return await self._prepared(kind, args, current, workload_patch(args, restarted_at=None))

    async def _workload(self, args: WorkloadArgs, tool: str) -> tuple[ResourceKind, JSON]:
        kind = await self.backend.kinds.resolve(args.kind)
        if not kind.namespaced:
            raise InvalidArguments(f"{tool}: {kind.kind} is not a namespaced workload")
        current = await self.backend.client.get(kind, args.name, args.namespace)
        return kind, current

    async def _prepared(
        self, kind: ResourceKind, args: WorkloadArgs, current: JSON, patch: tuple[JSON, PatchType]
    ) -> list[Prepared]:
        target = await self.backend.target(kind, namespace=args.namespace, name=args.name, fresh=True)
        body, patch_type = _guarded(patch[0], current), patch[1]
        after = await self.backend.client.patch(
            kind, args.name, args.namespace, body, patch_type=patch_type,
            field_manager=self.backend.field_manager, dry_run=True,
        )  # fmt: skip
        image = policy_image(as_written(after, patch[0]))
        return [Prepared(target=target, object=image, current=policy_image(current))]

    # -- execute -------------------------------------------------------------------------

    async def execute(self, args: WorkloadArgs, ctx: ExecutionContext) -> JSON:
        kind, target = await judged_kind(self.backend, ctx)
        action = ctx.call.actions[0]
        current, after = action.current or {}, action.object or {}
        template_meta = ((after.get("spec") or {}).get("template") or {}).get("metadata") or {}
        stamp = (template_meta.get("annotations") or {}).get(RESTARTED_AT)
        if isinstance(args, RestartArgs) and not stamp:
            raise BackendError("the judged restart has no timestamp; nothing was changed")
        patch, patch_type = workload_patch(args, restarted_at=stamp)
        try:
            result = await self.backend.client.patch(
                kind, args.name, target.namespace, _guarded(patch, current), patch_type=patch_type,
                field_manager=self.backend.field_manager, dry_run=False,
            )  # fmt: skip
        except Conflict as exc:
            raise Conflict(changed_since_judged(kind.kind, args.name, target.namespace, exc)) from exc
        return {"patched": summary(result)}


def workload_patch(args: WorkloadArgs, *, restarted_at: str | None) -> tuple[JSON, PatchType]:
    """The patch a workload tool sends, and its type; the same in prepare and execute."""
    if isinstance(args, ScaleArgs):
        return {"spec": {"replicas": args.replicas}}, "merge"
    if isinstance(args, RestartArgs):
        return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}, "merge"
    if isinstance(args, SetResourcesArgs):
        resources = {k: v for k, v in (("requests", args.requests), ("limits", args.limits)) if v}
        container = {"name": args.container, "resources": resources}
        # Strategic merge matches containers by name, so the others are left alone.
        return {"spec": {"template": {"spec": {"containers": [container]}}}}, "strategic"
    raise BackendError(f"{type(args).__name__} is not a workload patch")


def _guarded(patch: JSON, current: JSON) -> JSON:
    """The patch with the judged object's resourceVersion: optimistic concurrency."""
    version = (current.get("metadata") or {}).get("resourceVersion")
    if not version:
        raise BackendError("the live object has no resourceVersion; refusing to patch it blindly")
    return {**patch, "metadata": {"resourceVersion": version}}
