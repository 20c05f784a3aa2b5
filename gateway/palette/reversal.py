"""How the Palette tools' changes are undone: ``PaletteReverser``, the ``gateway.tools.Reverser``
every Palette write carries.

- a profile update (``PATCH …/profiles``) is undone by putting back the profiles the cluster
  had, each with the pack values it had (``PUT …/profiles``: the cluster's profiles become
  exactly those);
- a created cluster is undone by deleting it, which policy judges as a Palette delete (the
  bundle's ``palette_clusters`` rule: approval);
- a deleted cluster cannot be brought back (``gateway.changes.IRREVERSIBLE``; the rollback
  refuses it before this module is reached).

A cluster whose profiles or tags changed since the gateway's write is a drift: the rollback
is refused with what changed unless ``force``. At execution the cluster must still be as
policy judged it (profiles and environment tag), or nothing is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from gateway.changes import Change, changed_paths
from gateway.contracts import ProposedAction, canonical_json
from gateway.errors import BackendError, Conflict, Drifted, NotFound
from gateway.palette.backend import PaletteBackend
from gateway.palette.targets import policy_image, resolve_cluster
from gateway.tools import ExecutionContext, Prepared

__all__ = ["PaletteReverser", "restore_body"]

JSON = dict[str, Any]


def restore_body(cluster: JSON) -> JSON:
    """The ``v1SpectroClusterProfiles`` that gives a cluster back the profiles ``cluster``
    had, every pack with the tag and values it had."""
    profiles = []
    for template in (cluster.get("spec") or {}).get("clusterProfileTemplates") or []:
        packs = [
            {k: pack[k] for k in ("name", "tag", "values") if isinstance(pack.get(k), str)}
            for pack in template.get("packs") or []
            if isinstance(pack, dict) and isinstance(pack.get("name"), str)
        ]
        entry: JSON = {"uid": template.get("uid")}
        if packs:
            entry["packValues"] = packs
        profiles.append(entry)
    return {"profiles": profiles}


def _state(image: JSON | None) -> JSON:
    """What a drift is measured on, from a cluster's policy image (pack values digested):
    its tags and its profiles."""
    image = image or {}
    templates = [
        {
            "uid": t.get("uid"),
            "version": t.get("profileVersion"),
            "packs": [{k: p.get(k) for k in ("name", "tag", "values")} for p in t.get("packs") or []],
        }
        for t in (image.get("spec") or {}).get("clusterProfileTemplates") or []
    ]
    return {"labels": (image.get("metadata") or {}).get("labels") or {}, "profiles": templates}


def _deleting(cluster: JSON) -> bool:
    state = ((cluster.get("status") or {}).get("state") or "").lower()
    return state == "deleting" or bool((cluster.get("metadata") or {}).get("deletionTimestamp"))


def _digest(body: JSON) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class PaletteReverser:
    """``gateway.tools.Reverser`` for the Palette backend (see the module docstring)."""

    def __init__(self, backend: PaletteBackend) -> None:
        self.backend = backend

    async def prepare(self, changes: Sequence[Change], force: bool) -> list[Prepared]:
        prepared, drifted = [], []
        for index, change in reversed(list(enumerate(changes))):
            uid = change.target.cluster
            if not uid:
                raise BackendError("the journaled change names no cluster; nothing was run")
            try:
                target, live = await resolve_cluster(self.backend.client, uid, self.backend.label)
            except NotFound as exc:
                raise Conflict(f"cluster {uid} no longer exists: there is nothing to roll back") from exc
            if _deleting(live):
                raise Conflict(f"cluster {uid} is being deleted: there is nothing to roll back")
            current = policy_image(live)
            if change.after is None:
                lines = ["how the write left it was not recorded, so later changes cannot be ruled out"]
            else:
                lines = changed_paths(_state(policy_image(change.after)), _state(current))
            if lines:
                drifted.append(f"cluster {uid} changed since the gateway's write: " + "\n  ".join(lines))
            facts: JSON = {"change": index, "undoes": change.kind, "drifted": bool(lines)}
            if change.kind == "palette_created":
                facts["inverse"] = "delete_cluster"
                prepared.append(Prepared(target=target, current=current, effect="delete", policy_args=facts))
            elif change.kind == "palette_profiles" and change.before is not None:
                body = restore_body(change.before)
                facts |= {"inverse": "restore_profiles", "body_sha256": _digest(body)}
                view = {"profiles": restore_body(policy_image(change.before))["profiles"]}
                prepared.append(
                    Prepared(target=target, object=view, current=current, effect="write", policy_args=facts)
                )
            else:
                raise BackendError(f"the journal holds a Palette change that cannot be undone: {change.kind}")
        if drifted and not force:
            raise Drifted(
                "\n".join(drifted) + "\nNothing was sent to policy or Palette. Roll back anyway with "
                "force=true (policy may require approval for it)."
            )
        return prepared

    async def execute(self, changes: Sequence[Change], ctx: ExecutionContext) -> JSON:
        done = []
        for position, action in enumerate(ctx.call.actions):
            change = changes[int(action.args["change"])]
            done.append(await self._undo(position, action, change, ctx))
        return {"rolled_back": done, "count": len(done)}

    async def _undo(
        self, position: int, action: ProposedAction, change: Change, ctx: ExecutionContext
    ) -> JSON:
        uid = str(action.target.cluster)
        target, live = await resolve_cluster(self.backend.client, uid, self.backend.label)
        if target.environment != action.target.environment or _state(policy_image(live)) != _state(
            action.current
        ):
            raise Conflict(
                f"cluster {uid} changed after policy judged its rollback (profiles or environment tag); "
                "nothing was done, roll back again"
            )
        inverse = action.args.get("inverse")
        if inverse == "delete_cluster":
            await self.backend.client.delete_cluster(uid)
            ctx.changes.add(
                Change(index=position, kind="palette_deleted", backend="palette", target=target, before=live)
            )
            return {"uid": uid, "inverse": inverse, "deletion_requested": True}
        body = restore_body(change.before or {})
        if inverse != "restore_profiles" or action.args.get("body_sha256") != _digest(body):
            raise BackendError("the rollback no longer matches the one policy judged; nothing was done")
        await self.backend.client.put_cluster_profiles(uid, body)
        try:
            after: JSON | None = await self.backend.client.get_cluster(uid)
        except BackendError:
            after = None
        ctx.changes.add(
            Change(
                index=position,
                kind="palette_profiles",
                backend="palette",
                target=target,
                before=live,
                after=after,
                written=body,
            )
        )
        return {"uid": uid, "inverse": inverse, "profiles": [p["uid"] for p in body["profiles"]]}
