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
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.contracts import Target
from gateway.errors import Conflict, Invalid, InvalidArguments
from gateway.palette.client import PaletteClient
from gateway.palette.models import (
    ClusterArgs,
    CreateClusterArgs,
    UpdateProfilesArgs,
    ValidateConfigurationArgs,
    parse_create_body,
)
from gateway.palette.targets import CLUSTER_KIND, digest, environment_of, policy_image, resolve_cluster
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["CheckFn", "profiles_body", "write_tools"]

CheckFn = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
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


def write_tools(client: PaletteClient, label: str, *, check: CheckFn) -> list[ToolSpec[Any]]:
    async def still_same(uid: str, ctx: ExecutionContext) -> dict[str, Any]:
        """The live cluster, if its environment tag is the one policy judged."""
        target, cluster = await resolve_cluster(client, uid, label)
        judged = ctx.call.actions[0].target.environment if ctx.call.actions else None
        if target.environment != judged:
            raise Conflict(
                f"cluster {uid}'s environment tag changed since the call was judged "
                f"({judged!r} -> {target.environment!r}); nothing was done, ask again"
            )
        return cluster

    # -- create -----------------------------------------------------------------------
    async def create_prepare(args: CreateClusterArgs) -> list[Prepared]:
        body = parse_create_body(args.spec, args.cloud_type)
        errors = _validation_errors(await client.validate_cluster(args.cloud_type, body))
        if errors:
            listed = "; ".join(errors[:_MAX_REPORTED])
            raise Invalid(f"Palette's validation rejected the cluster spec, nothing was created: {listed}")
        return [
            Prepared(
                target=_create_target(body, label),
                object=policy_view(body),
                policy_args={"cloud_type": args.cloud_type, "name": body["metadata"]["name"]},
            )
        ]

    async def create_execute(args: CreateClusterArgs, ctx: ExecutionContext) -> dict[str, Any]:
        body = parse_create_body(args.spec, args.cloud_type)
        if ctx.call.actions and ctx.call.actions[0].object != policy_view(body):
            raise Conflict("the cluster spec differs from the one policy judged; nothing was created")
        uid = await client.create_cluster(args.cloud_type, body)
        return {"uid": uid, "name": body["metadata"]["name"], "cloud_type": args.cloud_type, "created": True}

    # -- delete -----------------------------------------------------------------------
    async def delete_prepare(args: ClusterArgs) -> list[Prepared]:
        target, cluster = await resolve_cluster(client, args.uid, label)
        return [Prepared(target=target, current=policy_image(cluster))]

    async def delete_execute(args: ClusterArgs, ctx: ExecutionContext) -> dict[str, Any]:
        cluster = await still_same(args.uid, ctx)
        await client.delete_cluster(args.uid)
        name = (cluster.get("metadata") or {}).get("name")
        return {"uid": args.uid, "name": name, "deletion_requested": True}

    # -- profiles ---------------------------------------------------------------------
    async def profiles_prepare(args: UpdateProfilesArgs) -> list[Prepared]:
        target, cluster = await resolve_cluster(client, args.uid, label)
        body = profiles_body(args)
        view = {"profiles": _digest_pack_values(body["profiles"])}
        return [Prepared(target=target, current=policy_image(cluster), object=view)]

    async def profiles_execute(args: UpdateProfilesArgs, ctx: ExecutionContext) -> dict[str, Any]:
        await still_same(args.uid, ctx)
        await client.patch_cluster_profiles(args.uid, profiles_body(args))
        return {"uid": args.uid, "updated_profiles": [p.uid for p in args.profiles]}

    # -- validate_configuration (a read: it asks policy, runs nothing) ----------------
    def create_arguments(args: ValidateConfigurationArgs) -> dict[str, Any]:
        cloud = args.cloud_type or (args.cluster_spec.get("spec") or {}).get("cloudType")
        if not isinstance(cloud, str) or not cloud:
            raise InvalidArguments("give cloud_type, or spec.cloudType in cluster_spec")
        return {"cloud_type": cloud, "spec": args.cluster_spec}

    async def validate_prepare(args: ValidateConfigurationArgs) -> list[Prepared]:
        arguments = create_arguments(args)
        try:
            create = CreateClusterArgs.model_validate(arguments)
        except ValueError:
            raise InvalidArguments(f"unsupported cloud_type {arguments['cloud_type']!r}") from None
        body = parse_create_body(create.spec, create.cloud_type)
        return [Prepared(target=_create_target(body, label))]

    async def validate_execute(args: ValidateConfigurationArgs, _: ExecutionContext) -> dict[str, Any]:
        verdict = await check("palette_create_cluster", create_arguments(args))
        return {"executed": False, "tool": "palette_create_cluster", "verdict": verdict}

    def spec(
        name: str, title: str, description: str, effect: Any, args: Any, prepare: Any, execute: Any
    ) -> ToolSpec[Any]:
        return ToolSpec(
            name=name,
            title=title,
            description=description,
            backend="palette",
            operation=name.removeprefix("palette_"),
            effect=effect,
            args=args,
            prepare=prepare,
            execute=execute,
        )

    return [
        spec(
            "palette_create_cluster",
            "Create a Palette cluster",
            "Create a cluster from a Palette create body. Palette validates it first; policy then "
            "decides (node count, GPU instance types and environment may need approval).",
            "write",
            CreateClusterArgs,
            create_prepare,
            create_execute,
        ),
        spec(
            "palette_delete_cluster",
            "Delete a Palette cluster",
            "Delete a cluster and its cloud resources. Always needs approval; two in production.",
            "delete",
            ClusterArgs,
            delete_prepare,
            delete_execute,
        ),
        spec(
            "palette_update_cluster_profiles",
            "Update a cluster's profiles",
            "Attach or update cluster profiles (and pack value overrides) on a cluster; other "
            "profiles stay attached.",
            "write",
            UpdateProfilesArgs,
            profiles_prepare,
            profiles_execute,
        ),
        spec(
            "palette_validate_configuration",
            "Validate a cluster configuration",
            "Policy's verdict on creating this cluster (allow, deny with reasons, or which approvals it "
            "would need). Nothing is created.",
            "read",
            ValidateConfigurationArgs,
            validate_prepare,
            validate_execute,
        ),
    ]
