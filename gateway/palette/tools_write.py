"""The Palette write tools, and ``palette_validate_configuration`` (policy's verdict on a
create, nothing executed).

``prepare`` builds exactly what policy judges: for a create, the body after Palette's own
validate endpoint accepted it (so policy never judges a spec Palette would refuse); for a
delete or a profile update, the live cluster as ``current``. Pack ``values`` can carry
credentials, so policy sees them (in ``object`` and ``current``) as ``sha256:`` digests.
``execute`` re-derives the body from the arguments and refuses to run when it no longer
matches what was judged, or when the cluster's environment tag changed since: an approval
covers the cluster as it was.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway.changes import Change
from gateway.contracts import Target
from gateway.errors import BackendError, Conflict, Invalid, InvalidArguments
from gateway.palette.backend import PaletteBackend, palette_spec
from gateway.palette.models import (
    ClusterArgs,
    CreateClusterArgs,
    UpdateProfilesArgs,
    ValidateConfigurationArgs,
    parse_create_body,
)
from gateway.palette.targets import CLUSTER_KIND, digest, environment_of, policy_image
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["ConfigurationTools", "WriteTools", "profiles_body"]

JSON = dict[str, Any]
_MAX_REPORTED = 10


def _digest_pack_values(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(profiles)
    for profile in out:
        for pack in profile.get("packValues") or []:
            if isinstance(pack, dict) and isinstance(pack.get("values"), str):
                pack["values"] = digest(pack["values"])
    return out


def policy_view(body: dict[str, Any]) -> dict[str, Any]:
    """The create body as OPA sees it: pack values digested."""
    view = copy.deepcopy(body)
    view["spec"]["profiles"] = _digest_pack_values(view["spec"].get("profiles") or [])
    return view


def profiles_body(args: UpdateProfilesArgs) -> dict[str, Any]:
    """The ``v1SpectroClusterProfiles`` body for a profile update."""
    profiles = []
    for ref in args.profiles:
        entry: dict[str, Any] = {"uid": ref.uid}
        if ref.pack_values:
            entry["packValues"] = [pv.model_dump(exclude_none=True) for pv in ref.pack_values]
        profiles.append(entry)
    return {"profiles": profiles}


def _validation_errors(report: dict[str, Any]) -> list[str]:
    """Every error in a ``v1SpectroClusterValidatorResponse``, as ``where: message``."""
    found = []
    for result in (report.get("machinePools") or {}).get("results") or []:
        for err in result.get("errors") or []:
            found.append(f"machine pool {result.get('name')}: {err.get('message') or err.get('code')}")
    for profile in report.get("profiles") or []:
        for result in (profile.get("packs") or {}).get("results") or []:
            for err in result.get("errors") or []:
                found.append(f"profile {profile.get('uid')}: {err.get('message') or err.get('code')}")
    return found


def _create_target(body: dict[str, Any], label: str) -> Target:
    return Target(kind=CLUSTER_KIND, name=body["metadata"]["name"], environment=environment_of(body, label))


def _create_arguments(args: ValidateConfigurationArgs) -> dict[str, Any]:
    """The ``palette_create_cluster`` arguments a configuration would be created with."""
    cloud = args.cloud_type or (args.cluster_spec.get("spec") or {}).get("cloudType")
    if not isinstance(cloud, str) or not cloud:
        raise InvalidArguments("give cloud_type, or spec.cloudType in cluster_spec")
    return {"cloud_type": cloud, "spec": args.cluster_spec}


class WriteTools:
    """Create, delete and re-profile clusters: what policy judges is what runs."""

    def __init__(self, backend: PaletteBackend) -> None:
        self.backend = backend

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            palette_spec(
                "palette_create_cluster",
                "Create a Palette cluster",
                "Create a cluster from a Palette create body. Palette validates it first; policy then "
                "decides (node count, GPU instance types and environment may need approval).",
                CreateClusterArgs,
                self.prepare_create,
                self.create,
                effect="write",
            ),
            palette_spec(
                "palette_delete_cluster",
                "Delete a Palette cluster",
                "Delete a cluster and its cloud resources. Always needs approval; two in production.",
                ClusterArgs,
                self.prepare_delete,
                self.delete,
                effect="delete",
            ),
            palette_spec(
                "palette_update_cluster_profiles",
                "Update a cluster's profiles",
                "Attach or update cluster profiles (and pack value overrides) on a cluster; other "
                "profiles stay attached.",
                UpdateProfilesArgs,
                self.prepare_profiles,
                self.update_profiles,
                effect="write",
            ),
        ]

    # -- palette_create_cluster -----------------------------------------------------------

    async def prepare_create(self, args: CreateClusterArgs) -> list[Prepared]:
        body = parse_create_body(args.spec, args.cloud_type)
        errors = _validation_errors(await self.backend.client.validate_cluster(args.cloud_type, body))
        if errors:
            listed = "; ".join(errors[:_MAX_REPORTED])
            raise Invalid(f"Palette's validation rejected the cluster spec, nothing was created: {listed}")
        return [
            Prepared(
                target=_create_target(body, self.backend.label),
                object=policy_view(body),
                policy_args={"cloud_type": args.cloud_type, "name": body["metadata"]["name"]},
            )
        ]

    async def create(self, args: CreateClusterArgs, ctx: ExecutionContext) -> JSON:
        body = parse_create_body(args.spec, args.cloud_type)
        if ctx.call.actions and ctx.call.actions[0].object != policy_view(body):
            raise Conflict("the cluster spec differs from the one policy judged; nothing was created")
        uid = await self.backend.client.create_cluster(args.cloud_type, body)
        target = ctx.call.actions[0].target.model_copy(update={"cluster": uid})
        after = await self._after(uid)
        ctx.changes.add(
            Change(index=0, kind="palette_created", backend="palette", target=target, after=after)
        )
        return {"uid": uid, "name": body["metadata"]["name"], "cloud_type": args.cloud_type, "created": True}

    # -- palette_delete_cluster -----------------------------------------------------------

    async def prepare_delete(self, args: ClusterArgs) -> list[Prepared]:
        target, cluster = await self.backend.cluster(args.uid)
        return [Prepared(target=target, current=policy_image(cluster))]

    async def delete(self, args: ClusterArgs, ctx: ExecutionContext) -> JSON:
        cluster = await self.backend.judged_cluster(args.uid, ctx)
        await self.backend.client.delete_cluster(args.uid)
        target = ctx.call.actions[0].target
        ctx.changes.add(
            Change(index=0, kind="palette_deleted", backend="palette", target=target, before=cluster)
        )
        name = (cluster.get("metadata") or {}).get("name")
        return {"uid": args.uid, "name": name, "deletion_requested": True}

    # -- palette_update_cluster_profiles --------------------------------------------------

    async def prepare_profiles(self, args: UpdateProfilesArgs) -> list[Prepared]:
        target, cluster = await self.backend.cluster(args.uid)
        view = {"profiles": _digest_pack_values(profiles_body(args)["profiles"])}
        return [Prepared(target=target, current=policy_image(cluster), object=view)]

    async def update_profiles(self, args: UpdateProfilesArgs, ctx: ExecutionContext) -> JSON:
        before = await self.backend.judged_cluster(args.uid, ctx)
        body = profiles_body(args)
        await self.backend.client.patch_cluster_profiles(args.uid, body)
        change = Change(
            index=0,
            kind="palette_profiles",
            backend="palette",
            target=ctx.call.actions[0].target,
            before=before,
            after=await self._after(args.uid),
            written=body,
        )
        ctx.changes.add(change)
        return {"uid": args.uid, "updated_profiles": [p.uid for p in args.profiles]}

    async def _after(self, uid: str) -> JSON | None:
        """The cluster right after a write, for the journal; ``None`` when it cannot be read
        (a rollback then cannot rule out later changes)."""
        try:
            return await self.backend.client.get_cluster(uid)
        except BackendError:
            return None


class ConfigurationTools:
    """``palette_validate_configuration``: a read that asks policy about a create and runs
    nothing, through the core's check (never the policy client itself)."""

    def __init__(self, backend: PaletteBackend) -> None:
        self.backend = backend

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            palette_spec(
                "palette_validate_configuration",
                "Validate a cluster configuration",
                "Policy's verdict on creating this cluster (allow, deny with reasons, or which approvals "
                "it would need). Nothing is created.",
                ValidateConfigurationArgs,
                self.prepare_validate,
                self.validate,
            )
        ]

    async def prepare_validate(self, args: ValidateConfigurationArgs) -> list[Prepared]:
        arguments = _create_arguments(args)
        try:
            create = CreateClusterArgs.model_validate(arguments)
        except ValueError:
            raise InvalidArguments(f"unsupported cloud_type {arguments['cloud_type']!r}") from None
        body = parse_create_body(create.spec, create.cloud_type)
        return [Prepared(target=_create_target(body, self.backend.label))]

    async def validate(self, args: ValidateConfigurationArgs, _: ExecutionContext) -> JSON:
        verdict = await self.backend.check("palette_create_cluster", _create_arguments(args))
        return {"executed": False, "tool": "palette_create_cluster", "verdict": verdict}
