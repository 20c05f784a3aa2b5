"""``k8s_apply`` and ``k8s_delete``.

``prepare`` changes nothing: it reads the live object (before-image) and asks the server
for the result of the exact request with ``dryRun=All`` (after-image), so admission,
defaulting and validation have run on what policy judges. Every document of a manifest
is prepared before any is applied; ``execute`` then applies them in order, the same
bytes, without dry-run. Applies and deletes are guarded by what was judged (``guards``):
the object's uid, generation, labels and annotations (an object judged absent must still
be absent); if any changed since it was judged (or approved), it is not written and the
call fails with a Conflict. Status updates in between do not count.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gateway.changes import Change
from gateway.contracts import Target
from gateway.errors import BackendError, Conflict, InvalidArguments, NotFound
from gateway.kubernetes.args import ApplyArgs, DeleteArgs
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.guards import JudgedState, guarded_write, object_ref
from gateway.kubernetes.images import policy_image
from gateway.kubernetes.kinds import ResourceKind
from gateway.kubernetes.manifests import Manifest, parse_manifest
from gateway.kubernetes.quantities import as_written
from gateway.kubernetes.tools_read import judged_kind
from gateway.kubernetes.views import partly_done, summary
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["WriteTools"]

JSON = dict[str, Any]


class WriteTools:
    def __init__(self, clusters: ClusterPool) -> None:
        self.clusters = clusters

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            ToolSpec(
                name="k8s_apply",
                title="Apply Kubernetes manifests",
                description=(
                    "Create or update objects from a YAML or JSON manifest (one or more documents) with "
                    "server-side apply. Policy judges each object as the server would store it. Fields "
                    "owned by another manager are not taken over: such a conflict is reported."
                ),
                backend="kubernetes",
                operation="apply",
                effect="write",
                args=ApplyArgs,
                prepare=self.prepare_apply,
                execute=self.apply,
                idempotent=True,
            ),
            ToolSpec(
                name="k8s_delete",
                title="Delete a Kubernetes object",
                description="Delete one object by kind and name. Dependents are removed in the background.",
                backend="kubernetes",
                operation="delete",
                effect="delete",
                args=DeleteArgs,
                prepare=self.prepare_delete,
                execute=self.delete,
                idempotent=False,
            ),
        ]

    # -- k8s_apply -----------------------------------------------------------------------

    def _manifest(self, args: ApplyArgs) -> Manifest:
        settings = self.clusters.settings
        return parse_manifest(
            args.manifest,
            max_bytes=settings.kube_max_manifest_bytes,
            max_documents=settings.kube_max_manifest_documents,
        )

    async def _placed(self, backend: KubeBackend, obj: JSON) -> tuple[ResourceKind, JSON]:
        """The kind serving ``obj`` and the object with its namespace checked."""
        kind = await backend.kinds.for_object(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        name = meta["name"]
        if kind.namespaced and not meta.get("namespace"):
            raise InvalidArguments(f"{kind.kind} {name!r}: {kind.kind} is namespaced; set metadata.namespace")
        if not kind.namespaced and meta.get("namespace"):
            raise InvalidArguments(
                f"{kind.kind} {name!r}: {kind.kind} is cluster-scoped; remove metadata.namespace"
            )
        return kind, obj

    async def prepare_apply(self, args: ApplyArgs) -> list[Prepared]:
        manifest = self._manifest(args)
        backend = await self.clusters.for_args(args)
        placed = [await self._placed(backend, obj) for obj in manifest.objects]
        created_namespaces = {
            o["metadata"]["name"] for k, o in placed if k.kind == "Namespace" and not k.group
        }
        policy_args = manifest.policy_args()
        return [
            await self._prepared(backend, kind, obj, created_namespaces, policy_args) for kind, obj in placed
        ]

    async def _prepared(
        self,
        backend: KubeBackend,
        kind: ResourceKind,
        obj: JSON,
        created_namespaces: set[str],
        policy_args: JSON,
    ) -> Prepared:
        """What policy judges for one object of an apply: its target (with the namespace's
        environment), the live object and the server's dry run of the apply."""
        meta = obj["metadata"]
        namespace = meta.get("namespace")
        # Three independent reads (the dry run changes nothing), asked at once: a call waits
        # for one round trip instead of three. Failures are raised in the order the reads
        # were once made one after the other, so a refusal reads the same.
        target, current, after = await asyncio.gather(
            backend.target(kind, namespace=namespace, name=meta["name"], fresh=True),
            _current(backend, kind, meta["name"], namespace),
            backend.client.apply(kind, obj, field_manager=backend.field_manager, dry_run=True),
            return_exceptions=True,
        )
        if isinstance(target, NotFound) and namespace in created_namespaces:
            raise InvalidArguments(
                f"namespace {namespace!r} does not exist yet: apply the Namespace on its own "
                "first, then the objects in it"
            ) from target
        for result in (target, current, after):
            if isinstance(result, BaseException):
                raise result
        target, current, after = cast(Target, target), cast(JSON | None, current), cast(JSON, after)
        if kind.kind == "Namespace" and not kind.group and target.environment is None:
            # A namespace being created: its environment is the one it will carry.
            target = target.model_copy(update={"environment": backend.environment_of(after)})
        return Prepared(
            target=target,
            object=policy_image(as_written(after, obj)),
            current=policy_image(current),
            policy_args=policy_args,
        )

    async def apply(self, args: ApplyArgs, ctx: ExecutionContext) -> JSON:
        manifest = self._manifest(args)
        backend = await self.clusters.judged(args, ctx)
        actions = ctx.call.actions
        if len(actions) != len(manifest.objects) or any(
            a.args.get("manifest_sha256") != manifest.sha256 for a in actions
        ):
            raise BackendError("the manifest does not match the one policy judged; nothing was applied")
        applied: list[JSON] = []
        for index, (action, obj) in enumerate(zip(actions, manifest.objects, strict=True)):
            kind, _ = await self._placed(backend, obj)
            seen: list[JSON] = []
            try:
                result = await _apply_judged(backend, kind, obj, action.current, seen)
            except BackendError as exc:
                if not applied:
                    raise
                raise partly_done(exc, applied, len(actions), "applied") from exc
            applied.append(summary(result, created=action.current is None))
            change = "created" if action.current is None else "updated"
            ctx.changes.add(
                Change(
                    index=index,
                    kind=change,
                    backend="kubernetes",
                    target=action.target,
                    before=seen[-1] if seen else None,
                    after=result,
                    written=obj,
                )
            )
        return {"cluster": backend.client.cluster, "applied": applied, "count": len(applied)}

    # -- k8s_delete ----------------------------------------------------------------------

    async def prepare_delete(self, args: DeleteArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind = await backend.kinds.resolve(args.kind)
        namespace = backend.require_namespace(kind, args.namespace, tool="k8s_delete")
        target = await backend.target(kind, namespace=namespace, name=args.name, fresh=True)
        current = await backend.client.get(kind, args.name, namespace)
        meta = current.get("metadata") or {}
        after = await backend.client.delete(
            kind,
            args.name,
            namespace,
            dry_run=True,
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        )
        # The dry-run answers with the object when deletion is deferred (finalizers), with
        # a Status otherwise; policy then sees the object as it is now.
        image = after if after.get("kind") == current.get("kind") else current
        return [Prepared(target=target, object=policy_image(image), current=policy_image(current))]

    async def delete(self, args: DeleteArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target = await judged_kind(backend, ctx)
        judged = ctx.call.actions[0].current or {}
        if not (judged.get("metadata") or {}).get("uid"):
            raise BackendError("the judged action has no object identity; nothing was deleted")
        state = JudgedState.of(judged)

        async def write(version: str) -> JSON:
            # uid and the version just checked are preconditions: only that object goes.
            return await backend.client.delete(
                kind, args.name, target.namespace, dry_run=False, uid=state.uid, resource_version=version
            )

        seen: list[JSON] = []
        await guarded_write(
            state,
            lambda: backend.client.get(kind, args.name, target.namespace),
            write,
            what=object_ref(kind.kind, args.name, target.namespace),
            on_read=seen.append,
        )
        ctx.changes.add(
            Change(
                index=0,
                kind="deleted",
                backend="kubernetes",
                target=target,
                before=seen[-1],
                written={"propagationPolicy": "Background"},
            )
        )
        return {"cluster": backend.client.cluster, "deleted": summary(judged)}


async def _apply_judged(
    backend: KubeBackend, kind: ResourceKind, obj: JSON, judged: JSON | None, seen: list[JSON]
) -> JSON:
    """Apply ``obj`` if its target is still as judged: absent for a create (checked just
    before), else the same uid, generation, labels and annotations (``guards``), the apply
    carrying the version it was checked at as a precondition. ``seen`` gets the live object
    the apply found (the journal's before-image)."""
    meta = obj["metadata"]
    name, namespace = meta["name"], meta.get("namespace") if kind.namespaced else None
    what = object_ref(kind.kind, name, namespace)
    manager = backend.field_manager
    if judged is None:
        if await _current(backend, kind, name, namespace) is not None:
            raise Conflict(
                f"{what} was created by someone else after policy judged its creation; nothing was "
                "written, propose the call again"
            )
        return await backend.client.apply(kind, obj, field_manager=manager, dry_run=False)

    async def write(version: str) -> JSON:
        body = {**obj, "metadata": {**meta, "resourceVersion": version}}
        return await backend.client.apply(kind, body, field_manager=manager, dry_run=False)

    result: JSON = await guarded_write(
        JudgedState.of(judged),
        lambda: backend.client.get(kind, name, namespace),
        write,
        what=what,
        on_read=seen.append,
    )
    return result


async def _current(backend: KubeBackend, kind: ResourceKind, name: str, namespace: str | None) -> JSON | None:
    try:
        return await backend.client.get(kind, name, namespace)
    except NotFound:
        return None
