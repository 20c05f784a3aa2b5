"""How the Kubernetes tools' changes are undone: ``KubeReverser``, the ``gateway.tools.Reverser``
every Kubernetes write carries (``gateway_rollback`` calls it).

One inverse per journaled change, last change first, on the cluster the change was made on:

===============  ==========================================================================
change           inverse
===============  ==========================================================================
created          delete it (only that object: its uid is a precondition)
updated          server-side apply, as the gateway's field manager, of what that manager
                 owned before or after the write, with the values from before
                 (``fieldsets.restore_manifest``): fields the apply added are removed;
                 a Secret: a merge patch of the keys the apply wrote (``stringData`` is
                 write-only; ``fieldsets.secret_restore_patch``)
deleted          re-create it from its last state without what the server sets: a new uid
scaled           the previous replica count, through ``/scale``
restarted        the previous ``restartedAt`` annotation (or none): the controller rolls the
                 pods out again; undoing a restart is another rollout, not the old pods back
resources_set    the container's previous requests and limits (keys the call added removed)
===============  ==========================================================================

``prepare`` reads each live object and changes nothing: an object that changed since the
gateway's write (``drift.drift``) refuses the rollback with what changed unless ``force``;
it then asks the server for the inverse with ``dryRun=All``, so policy judges the object as
it would be written. ``execute`` rebuilds the same bodies from the journal (their digests
were judged), guarded by the live state policy judged (``guards``), and reports what it
changed, so a rollback can be rolled back too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.changes import Change
from gateway.contracts import ProposedAction, Target, canonical_json
from gateway.errors import BackendError, Conflict, Drifted, NotFound
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.client import PatchType
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.drift import drift
from gateway.kubernetes.fieldsets import recreate_manifest, restore_manifest, secret_restore_patch
from gateway.kubernetes.guards import JudgedState, guarded_write, object_ref
from gateway.kubernetes.images import policy_image
from gateway.kubernetes.kinds import ResourceKind
from gateway.kubernetes.quantities import as_written
from gateway.kubernetes.tools_patch import RESTARTED_AT, with_value
from gateway.kubernetes.views import partly_done, summary
from gateway.tools import ExecutionContext, Prepared

__all__ = ["BackendFor", "KubeReverser", "pool_clusters"]

JSON = dict[str, Any]
BackendFor = Callable[[str | None], Awaitable[KubeBackend]]
"""The backend of a cluster by name: where a change was made is where it is undone."""

_PATCHED: Final[frozenset[str]] = frozenset({"scaled", "restarted", "resources_set", "restore_secret"})
_NOTES: Final[dict[str, str]] = {
    "recreate": "re-created from its last state: it is a new object with a new uid; what its deletion "
    "removed with it (pods of a workload, data of a volume) is not restored, controllers make new ones",
    "restarted": "the previous restartedAt annotation is back, which changes the pod template: the "
    "controller rolls the pods out again (undoing a restart is another rollout, not the old pods back)",
}


def pool_clusters(pool: ClusterPool) -> BackendFor:
    """``BackendFor`` over the gateway's clusters: a change is undone on the cluster it was
    made on, if the gateway may still use it."""

    async def backend_for(cluster: str | None) -> KubeBackend:
        if cluster is None or cluster not in pool.catalog:
            raise BackendError(
                f"the change was made on cluster {cluster!r}, which this gateway may no longer use "
                "(GATEWAY_KUBE_CONTEXTS); nothing was run"
            )
        return await pool.backend(cluster)

    return backend_for


@dataclass(frozen=True)
class _Place:
    """Where a change is undone: the cluster's backend, the kind, the object's name."""

    backend: KubeBackend
    kind: ResourceKind
    name: str
    namespace: str | None

    @property
    def what(self) -> str:
        return object_ref(self.kind.kind, self.name, self.namespace)

    async def live(self) -> JSON | None:
        try:
            return await self.backend.client.get(self.kind, self.name, self.namespace)
        except NotFound:
            return None

    async def read(self) -> JSON:
        return await self.backend.client.get(self.kind, self.name, self.namespace)


class KubeReverser:
    """``gateway.tools.Reverser`` for the Kubernetes backend (see the module docstring)."""

    def __init__(self, backend_for: BackendFor) -> None:
        self._backend_for = backend_for

    # -- prepare ---------------------------------------------------------------------------

    async def prepare(self, changes: Sequence[Change], force: bool) -> list[Prepared]:
        inverses = [await self._inverse(i, c, force) for i, c in reversed(list(enumerate(changes)))]
        drifted = [(what, lines) for what, lines, _ in inverses if lines]
        if drifted and not force:
            listed = "\n".join(
                f"{what} changed since the gateway's write: " + "\n  ".join(lines) for what, lines in drifted
            )
            raise Drifted(
                f"{listed}\nNothing was sent to policy or written. Roll back anyway with force=true "
                "(policy may require approval for it)."
            )
        return [prepared for _, _, prepared in inverses]

    async def _inverse(self, index: int, change: Change, force: bool) -> tuple[str, list[str], Prepared]:
        place = await self._place(change.target)
        live = await place.live()
        target = await place.backend.target(
            place.kind, namespace=place.namespace, name=place.name, fresh=True
        )
        if change.kind == "deleted":
            return place.what, [], await self._recreate(index, change, place, live, target)
        if live is None:
            raise Conflict(
                f"{place.what} no longer exists (it was deleted after the gateway's write): there is "
                "nothing to roll back"
            )
        lines = drift(change.after, live)
        facts = {"change": index, "undoes": change.kind, "drifted": bool(lines)}
        current = policy_image(live)
        if change.kind == "created":
            prepared = Prepared(
                target=target,
                object=current,
                current=current,
                effect="delete",
                policy_args={**facts, "inverse": "delete"},
            )
        elif (inverse := _patch_inverse(change, place.kind)) is not None:
            prepared = await self._patched(facts, inverse, change, place, live, target)
        elif change.kind == "updated":
            body = restore_manifest(_required(change.before, place.what), change.after or {}, _manager(place))
            after = await place.backend.client.apply(
                place.kind, body, field_manager=_manager(place), dry_run=True, force=force
            )
            prepared = Prepared(
                target=target,
                object=policy_image(as_written(after, body)),
                current=current,
                effect="write",
                policy_args={**facts, "inverse": "restore", "body_sha256": _digest(body)},
            )
        else:
            raise BackendError(
                f"the journal holds a change the Kubernetes backend does not know: {change.kind}"
            )
        return place.what, lines, prepared

    async def _recreate(
        self, index: int, change: Change, place: _Place, live: JSON | None, target: Target
    ) -> Prepared:
        before = _required(change.before, place.what)
        if live is not None:
            same = (live.get("metadata") or {}).get("uid") == (before.get("metadata") or {}).get("uid")
            raise Conflict(
                f"{place.what} is still being deleted (finalizers): roll back once it is gone"
                if same
                else f"{place.what} was created again since the gateway deleted it; refusing to replace it"
            )
        body = recreate_manifest(before)
        after = await place.backend.client.apply(
            place.kind, body, field_manager=_manager(place), dry_run=True
        )
        if place.kind.kind == "Namespace" and not place.kind.group and target.environment is None:
            target = target.model_copy(update={"environment": place.backend.environment_of(after)})
        facts: JSON = {"change": index, "undoes": change.kind, "drifted": False, "inverse": "recreate"}
        return Prepared(
            target=target,
            object=policy_image(as_written(after, body)),
            effect="write",
            policy_args={**facts, "body_sha256": _digest(body)},
        )

    async def _patched(
        self, facts: JSON, inverse: str, change: Change, place: _Place, live: JSON, target: Target
    ) -> Prepared:
        body, patch_type, subresource = _inverse_patch(inverse, change, place.what, _manager(place))
        answer = await place.backend.client.patch(
            place.kind,
            place.name,
            place.namespace,
            body,
            patch_type=patch_type,
            field_manager=_manager(place),
            dry_run=True,
            subresource=subresource,
        )
        if subresource == "scale":
            replicas = (answer.get("spec") or {}).get("replicas")
            after = with_value(
                live, tuple(change.detail.get("replicas_path") or ("spec", "replicas")), replicas
            )
        else:
            after = as_written(answer, body)
        args = {**facts, "inverse": inverse, "body_sha256": _digest(body)}
        return Prepared(
            target=target,
            object=policy_image(after),
            current=policy_image(live),
            effect="write",
            policy_args=args,
        )

    async def _place(self, target: Target) -> _Place:
        if not target.api_version or not target.kind or not target.name:
            raise BackendError("the journaled change names no object; nothing was run")
        backend = await self._backend_for(target.cluster)
        kind = await backend.kinds.for_object(target.api_version, target.kind)
        return _Place(backend, kind, target.name, target.namespace if kind.namespaced else None)

    # -- execute ---------------------------------------------------------------------------

    async def execute(self, changes: Sequence[Change], ctx: ExecutionContext) -> JSON:
        done: list[JSON] = []
        actions = ctx.call.actions
        for position, action in enumerate(actions):
            try:
                change = changes[int(action.args["change"])]
                done.append(await self._undo(position, action, change, ctx))
            except BackendError as exc:
                if not done:
                    raise
                raise partly_done(exc, done, len(actions), "rolled back") from exc
        return {"rolled_back": done, "count": len(done)}

    async def _undo(
        self, position: int, action: ProposedAction, change: Change, ctx: ExecutionContext
    ) -> JSON:
        place = await self._place(action.target)
        inverse = action.args.get("inverse")
        seen: list[JSON] = []
        record = partial_change(position, action.target)
        if inverse == "delete":
            state = JudgedState.of(action.current)

            async def delete(version: str) -> JSON:
                return await place.backend.client.delete(
                    place.kind,
                    place.name,
                    place.namespace,
                    dry_run=False,
                    uid=state.uid,
                    resource_version=version,
                )

            await guarded_write(state, place.read, delete, what=place.what, on_read=seen.append)
            ctx.changes.add(
                record(kind="deleted", before=seen[-1], written={"propagationPolicy": "Background"})
            )
            return {**summary(seen[-1]), "inverse": "delete"}
        if inverse == "recreate":
            body = _judged(recreate_manifest(_required(change.before, place.what)), action)
            if await place.live() is not None:
                raise Conflict(
                    f"{place.what} exists again since policy judged its re-creation; nothing was written"
                )
            result = await place.backend.client.apply(
                place.kind, body, field_manager=_manager(place), dry_run=False
            )
            ctx.changes.add(record(kind="created", after=result, written=body))
            return {**summary(result, created=True), "inverse": "recreate", "note": _NOTES["recreate"]}
        if inverse == "restore":
            body = _judged(
                restore_manifest(_required(change.before, place.what), change.after or {}, _manager(place)),
                action,
            )
            force = bool(action.args.get("force"))

            async def apply(version: str) -> JSON:
                versioned = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
                return await place.backend.client.apply(
                    place.kind, versioned, field_manager=_manager(place), dry_run=False, force=force
                )

            result = await guarded_write(
                JudgedState.of(action.current), place.read, apply, what=place.what, on_read=seen.append
            )
            ctx.changes.add(record(kind="updated", before=seen[-1], after=result, written=body))
            return {**summary(result), "inverse": "restore"}
        if inverse in _PATCHED:
            return await self._undo_patch(str(inverse), place, action, change, ctx, record)
        raise BackendError(f"the judged rollback names no known inverse ({inverse!r}); nothing was run")

    async def _undo_patch(
        self,
        inverse: str,
        place: _Place,
        action: ProposedAction,
        change: Change,
        ctx: ExecutionContext,
        record: Any,
    ) -> JSON:
        body, patch_type, subresource = _inverse_patch(inverse, change, place.what, _manager(place))
        _judged(body, action)
        seen: list[JSON] = []

        async def patch(version: str) -> JSON:
            return await place.backend.client.patch(
                place.kind,
                place.name,
                place.namespace,
                {**body, "metadata": {**(body.get("metadata") or {}), "resourceVersion": version}},
                patch_type=patch_type,
                field_manager=_manager(place),
                dry_run=False,
                subresource=subresource,
            )

        result = await guarded_write(
            JudgedState.of(action.current), place.read, patch, what=place.what, on_read=seen.append
        )
        after = result if subresource is None else await place.live()
        ctx.changes.add(
            record(kind=change.kind, before=seen[-1], after=after, written=body, detail=change.detail)
        )
        out = {**summary(after or result), "inverse": inverse}
        if change.kind in _NOTES:
            out["note"] = _NOTES[change.kind]
        return out


def partial_change(index: int, target: Target) -> Callable[..., Change]:
    """A ``Change`` of the Kubernetes backend at ``index`` on ``target``, the rest to fill in."""

    def make(**fields: Any) -> Change:
        return Change(index=index, backend="kubernetes", target=target, **fields)

    return make


def _patch_inverse(change: Change, kind: ResourceKind) -> str | None:
    """The name of the patch that undoes ``change``, if a patch does (else ``None``)."""
    if change.kind == "updated" and kind.kind == "Secret" and not kind.group:
        return "restore_secret"
    return change.kind if change.kind in _PATCHED else None


def _inverse_patch(
    inverse: str, change: Change, what: str, manager: str
) -> tuple[JSON, PatchType, str | None]:
    """The patch that puts back what a scale, restart, set_resources or Secret apply changed."""
    before = _required(change.before, what)
    if inverse == "restore_secret":
        return secret_restore_patch(before, change.after or {}, manager), "merge", None
    if change.kind == "scaled":
        path = tuple(change.detail.get("replicas_path") or ("spec", "replicas"))
        return {"spec": {"replicas": _value_at(before, path)}}, "merge", "scale"
    template = (before.get("spec") or {}).get("template") or {}
    if change.kind == "restarted":
        previous = ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
        return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: previous}}}}}, "merge", None
    name = change.detail.get("container")
    old = _container_resources(before, name)
    new = _container_resources(change.after or {}, name)
    resources = {
        section: (
            {
                key: (old[section] or {}).get(key)
                for key in {*(old.get(section) or {}), *(new.get(section) or {})}
            }
            if old.get(section) is not None
            else None
        )
        for section in ("requests", "limits")
        if section in old or section in new
    }
    return (
        {"spec": {"template": {"spec": {"containers": [{"name": name, "resources": resources}]}}}},
        "strategic",
        None,
    )


def _container_resources(obj: JSON, name: Any) -> JSON:
    containers = ((((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    for container in containers:
        if isinstance(container, dict) and container.get("name") == name:
            resources = container.get("resources") or {}
            return resources if isinstance(resources, dict) else {}
    return {}


def _judged(body: JSON, action: ProposedAction) -> JSON:
    """``body`` if it is what policy judged (its digest is in the action), else nothing runs."""
    if action.args.get("body_sha256") != _digest(body):
        raise BackendError(
            "the rollback no longer matches the one policy judged (the journal changed); nothing was written"
        )
    return body


def _digest(body: JSON) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _manager(place: _Place) -> str:
    return place.backend.field_manager


def _required(image: JSON | None, what: str) -> JSON:
    if image is None:
        raise BackendError(f"the journal holds no earlier state of {what}; it cannot be rolled back")
    return image


def _value_at(obj: JSON, path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value
