"""The fake's write endpoints: validate, create, delete, and a cluster's profiles."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from gateway.local.fake_palette.state import Project, uid_for
from gateway.local.palette_spec import CREATE_ENTITIES

__all__ = ["write_routes"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_routes(
    fake: Any, api_error: type[Exception], find_cluster: Callable[..., dict[str, Any]]
) -> list[Route]:
    """Routes for every cloud type the spec has a create entity for."""

    def fail(status: int, code: str, message: str) -> Exception:
        return api_error(status, code, message)

    def problems(project: Project, body: dict[str, Any]) -> dict[str, Any]:
        """``v1SpectroClusterValidatorResponse`` for a create body."""
        meta = body.get("metadata") or {}
        if not meta.get("name"):
            raise fail(400, "InvalidClusterName", "metadata.name is required")
        if any(c["metadata"]["name"] == meta["name"] for c in project.clusters.values()):
            raise fail(409, "ClusterNameExists", f"a cluster named {meta['name']} already exists")
        spec = body.get("spec") or {}
        pools = []
        for pool in spec.get("machinepoolconfig") or []:
            config = pool.get("poolConfig") or {}
            errors = []
            size = config.get("size")
            if not isinstance(size, int) or size < 1:
                errors.append({"code": "InvalidPoolSize", "message": "pool size must be at least 1"})
            if not (pool.get("cloudConfig") or {}).get("instanceType"):
                errors.append({"code": "InstanceTypeRequired", "message": "instanceType is required"})
            pools.append(
                {"name": config.get("name", ""), "displayName": config.get("name", ""), "errors": errors}
            )
        if not pools:
            pools.append(
                {
                    "name": "machinepoolconfig",
                    "errors": [
                        {"code": "MachinePoolRequired", "message": "at least one machine pool is required"}
                    ],
                }
            )
        profiles = []
        for ref in spec.get("profiles") or []:
            errors = []
            if ref.get("uid") not in project.profiles:
                errors.append(
                    {"code": "ProfileNotFound", "message": f"cluster profile {ref.get('uid')} not found"}
                )
            profiles.append(
                {"uid": ref.get("uid", ""), "packs": {"results": [{"name": "profile", "errors": errors}]}}
            )
        return {"machinePools": {"results": pools}, "profiles": profiles}

    def has_errors(report: dict[str, Any]) -> bool:
        results = report["machinePools"]["results"] + [
            r for p in report["profiles"] for r in p["packs"]["results"]
        ]
        return any(r["errors"] for r in results)

    def templates(project: Project, refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for ref in refs:
            profile = project.profiles.get(ref.get("uid", ""))
            if profile is None:
                raise fail(404, "ResourceNotFound", f"cluster profile {ref.get('uid')} not found")
            published = profile["spec"]["published"]
            packs = copy.deepcopy(published["packs"])
            for override in ref.get("packValues") or []:
                for pack in packs:
                    if pack["name"] == override.get("name"):
                        pack["values"] = override.get("values", pack["values"])
                        pack["tag"] = override.get("tag", pack["tag"])
            out.append(
                {
                    "uid": profile["metadata"]["uid"],
                    "name": profile["metadata"]["name"],
                    "type": published["type"],
                    "cloudType": published["cloudType"],
                    "profileVersion": profile["spec"]["version"],
                    "packs": packs,
                }
            )
        return out

    def validate_for(cloud: str) -> Any:
        async def validate(request: Request, project: Project, body: Any) -> tuple[int, Any]:
            return 200, problems(project, body or {})

        return validate

    def create_for(cloud: str) -> Any:
        async def create(request: Request, project: Project, body: Any) -> tuple[int, Any]:
            body = body or {}
            if has_errors(problems(project, body)):
                raise fail(
                    400, "ClusterValidationFailed", "the cluster spec failed validation; call validate"
                )
            uid = uid_for(project.uid, "cluster", body["metadata"]["name"], _now())
            spec = body["spec"]
            project.clusters[uid] = {
                "apiVersion": "v1",
                "kind": "SpectroCluster",
                "metadata": {
                    "uid": uid,
                    "name": body["metadata"]["name"],
                    "labels": dict(body["metadata"].get("labels") or {}),
                    "annotations": {"scope": "project", "projectUid": project.uid},
                    "creationTimestamp": _now(),
                    "lastModifiedTimestamp": _now(),
                },
                "spec": {
                    "cloudType": cloud,
                    "clusterType": "PureManage",
                    "cloudConfigRef": {
                        "kind": "CloudConfig",
                        "name": body["metadata"]["name"],
                        "uid": uid_for(uid, "cloudconfig"),
                    },
                    "clusterProfileTemplates": templates(project, spec.get("profiles") or []),
                },
                "status": {"state": "Provisioning", "conditions": []},
            }
            project.pools[uid] = copy.deepcopy(spec.get("machinepoolconfig") or [])
            project.health[uid] = {"state": "Unknown", "conditions": []}
            project.events[uid] = []
            return 201, {"uid": uid}

        return create

    async def delete(request: Request, project: Project, _: Any) -> tuple[int, Any]:
        record = find_cluster(project, request.path_params["uid"])
        record["status"]["state"] = "Deleting"
        record["metadata"]["deletionTimestamp"] = _now()
        return 204, None

    def set_profiles(replace: bool) -> Any:
        async def update(request: Request, project: Project, body: Any) -> tuple[int, Any]:
            record = find_cluster(project, request.path_params["uid"])
            new = templates(project, (body or {}).get("profiles") or [])
            if replace:
                record["spec"]["clusterProfileTemplates"] = new
            else:
                kept = [
                    t
                    for t in record["spec"]["clusterProfileTemplates"]
                    if t["uid"] not in {n["uid"] for n in new}
                ]
                record["spec"]["clusterProfileTemplates"] = kept + new
            record["metadata"]["lastModifiedTimestamp"] = _now()
            return 204, None

        return update

    routes = []
    for cloud, entity in CREATE_ENTITIES.items():
        routes.append(
            Route(
                f"/v1/spectroclusters/{cloud}/validate",
                fake.endpoint(validate_for(cloud), entity, "v1SpectroClusterValidatorResponse"),
                methods=["POST"],
            )
        )
        routes.append(
            Route(
                f"/v1/spectroclusters/{cloud}",
                fake.endpoint(create_for(cloud), entity, "v1Uid"),
                methods=["POST"],
            )
        )
    routes.append(Route("/v1/spectroclusters/{uid}", fake.endpoint(delete, None, None), methods=["DELETE"]))
    routes.append(
        Route(
            "/v1/spectroclusters/{uid}/profiles",
            fake.endpoint(set_profiles(True), "v1SpectroClusterProfiles", None),
            methods=["PUT"],
        )
    )
    routes.append(
        Route(
            "/v1/spectroclusters/{uid}/profiles",
            fake.endpoint(set_profiles(False), "v1SpectroClusterProfiles", None),
            methods=["PATCH"],
        )
    )
    return routes
