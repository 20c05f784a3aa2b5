"""The fake's write endpoints: validate, create, delete, and a cluster's profiles."""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, Protocol

from starlette.requests import Request
from starlette.routing import Route

from gateway.local.fake_palette.protocol import ApiError, Handler, Result, find_cluster, now
from gateway.local.fake_palette.state import Project, uid_for
from gateway.local.palette_spec import CREATE_ENTITIES

__all__ = ["Endpoints", "WriteEndpoints"]


class Endpoints(Protocol):
    """What the app offers its endpoints: a handler wrapped with auth, spec checks and errors."""

    def endpoint(self, handler: Handler, request_def: str | None, response_def: str | None) -> Any: ...


def validation_report(project: Project, body: dict[str, Any]) -> dict[str, Any]:
    """``v1SpectroClusterValidatorResponse`` for a create body."""
    meta = body.get("metadata") or {}
    if not meta.get("name"):
        raise ApiError(400, "InvalidClusterName", "metadata.name is required")
    if any(c["metadata"]["name"] == meta["name"] for c in project.clusters.values()):
        raise ApiError(409, "ClusterNameExists", f"a cluster named {meta['name']} already exists")
    spec = body.get("spec") or {}
    pools = [_pool_result(pool) for pool in spec.get("machinepoolconfig") or []]
    if not pools:
        required = {"code": "MachinePoolRequired", "message": "at least one machine pool is required"}
        pools.append({"name": "machinepoolconfig", "errors": [required]})
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


def _pool_result(pool: dict[str, Any]) -> dict[str, Any]:
    config = pool.get("poolConfig") or {}
    errors = []
    size = config.get("size")
    if not isinstance(size, int) or size < 1:
        errors.append({"code": "InvalidPoolSize", "message": "pool size must be at least 1"})
    if not (pool.get("cloudConfig") or {}).get("instanceType"):
        errors.append({"code": "InstanceTypeRequired", "message": "instanceType is required"})
    return {"name": config.get("name", ""), "displayName": config.get("name", ""), "errors": errors}


def _has_errors(report: dict[str, Any]) -> bool:
    results = report["machinePools"]["results"] + [
        r for p in report["profiles"] for r in p["packs"]["results"]
    ]
    return any(r["errors"] for r in results)


def profile_templates(project: Project, refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``clusterProfileTemplates`` of a cluster given profile references (with overrides)."""
    out = []
    for ref in refs:
        profile = project.profiles.get(ref.get("uid", ""))
        if profile is None:
            raise ApiError(404, "ResourceNotFound", f"cluster profile {ref.get('uid')} not found")
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


def _new_cluster(project: Project, uid: str, cloud: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``v1SpectroCluster`` a valid create body makes, provisioning."""
    name = body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "SpectroCluster",
        "metadata": {
            "uid": uid,
            "name": name,
            "labels": dict(body["metadata"].get("labels") or {}),
            "annotations": {"scope": "project", "projectUid": project.uid},
            "creationTimestamp": now(),
            "lastModifiedTimestamp": now(),
        },
        "spec": {
            "cloudType": cloud,
            "clusterType": "PureManage",
            "cloudConfigRef": {"kind": "CloudConfig", "name": name, "uid": uid_for(uid, "cloudconfig")},
            "clusterProfileTemplates": profile_templates(project, body["spec"].get("profiles") or []),
        },
        "status": {"state": "Provisioning", "conditions": []},
    }


class WriteEndpoints:
    """The write endpoints, for every cloud type the spec has a create entity for."""

    def __init__(self, app: Endpoints) -> None:
        self.app = app

    def routes(self) -> list[Route]:
        endpoint = self.app.endpoint
        routes = []
        for cloud, entity in CREATE_ENTITIES.items():
            validate = endpoint(self.validate, entity, "v1SpectroClusterValidatorResponse")
            routes.append(Route(f"/v1/spectroclusters/{cloud}/validate", validate, methods=["POST"]))
            create = endpoint(partial(self.create, cloud), entity, "v1Uid")
            routes.append(Route(f"/v1/spectroclusters/{cloud}", create, methods=["POST"]))
        profiles = "/v1/spectroclusters/{uid}/profiles"
        return [
            *routes,
            Route("/v1/spectroclusters/{uid}", endpoint(self.delete, None, None), methods=["DELETE"]),
            Route(
                profiles, endpoint(self.replace_profiles, "v1SpectroClusterProfiles", None), methods=["PUT"]
            ),
            Route(
                profiles, endpoint(self.patch_profiles, "v1SpectroClusterProfiles", None), methods=["PATCH"]
            ),
        ]

    async def validate(self, request: Request, project: Project, body: Any) -> Result:
        return 200, validation_report(project, body or {})

    async def create(self, cloud: str, request: Request, project: Project, body: Any) -> Result:
        body = body or {}
        if _has_errors(validation_report(project, body)):
            raise ApiError(
                400, "ClusterValidationFailed", "the cluster spec failed validation; call validate"
            )
        uid = uid_for(project.uid, "cluster", body["metadata"]["name"], now())
        project.clusters[uid] = _new_cluster(project, uid, cloud, body)
        project.pools[uid] = copy.deepcopy(body["spec"].get("machinepoolconfig") or [])
        project.health[uid] = {"state": "Unknown", "conditions": []}
        project.events[uid] = []
        return 201, {"uid": uid}

    async def delete(self, request: Request, project: Project, _: Any) -> Result:
        record = find_cluster(project, request.path_params["uid"])
        record["status"]["state"] = "Deleting"
        record["metadata"]["deletionTimestamp"] = now()
        return 204, None

    async def replace_profiles(self, request: Request, project: Project, body: Any) -> Result:
        record = find_cluster(project, request.path_params["uid"])
        record["spec"]["clusterProfileTemplates"] = profile_templates(
            project, (body or {}).get("profiles") or []
        )
        record["metadata"]["lastModifiedTimestamp"] = now()
        return 204, None

    async def patch_profiles(self, request: Request, project: Project, body: Any) -> Result:
        """Add or update the given profiles; the others stay attached."""
        record = find_cluster(project, request.path_params["uid"])
        new = profile_templates(project, (body or {}).get("profiles") or [])
        replaced = {n["uid"] for n in new}
        kept = [t for t in record["spec"]["clusterProfileTemplates"] if t["uid"] not in replaced]
        record["spec"]["clusterProfileTemplates"] = kept + new
        record["metadata"]["lastModifiedTimestamp"] = now()
        return 204, None
