"""Argument contracts of the Palette tools, and the create body as policy relies on it.

Argument models forbid unknown fields: a typo in a tool call is an error the model can fix,
not a silently ignored option. ``CreateBody`` checks exactly the parts of a
``v1Spectro<Cloud>ClusterEntity`` that policy reads (name, labels, machine pools, sizes,
instance types) and keeps everything else as given, so Palette's validate endpoint judges
the rest.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from gateway.errors import InvalidArguments

__all__ = [
    "CLOUD_TYPES",
    "CloudType",
    "ClusterArgs",
    "ClusterCostArgs",
    "ClusterEventsArgs",
    "CompareArgs",
    "CreateBody",
    "CreateClusterArgs",
    "ListClustersArgs",
    "ListPacksArgs",
    "ListProfilesArgs",
    "PackValue",
    "ProfileArgs",
    "ProfileRef",
    "RecommendArgs",
    "UpdateProfilesArgs",
    "ValidateConfigurationArgs",
    "parse_create_body",
]

CloudType = Literal["aws", "azure", "gcp", "vsphere", "maas", "eks", "edge-native"]
CLOUD_TYPES: tuple[str, ...] = ("aws", "azure", "gcp", "vsphere", "maas", "eks", "edge-native")

Uid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")]
ShortText = Annotated[str, Field(min_length=1, max_length=128)]
PackLayer = Literal["kernel", "os", "k8s", "cni", "csi", "addon"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListClustersArgs(_Args):
    state: ShortText | None = Field(None, description="Cluster state, e.g. Running, Provisioning, Deleting")
    environment: ShortText | None = Field(None, description="Value of the cluster's environment tag")
    name: ShortText | None = Field(None, description="Substring of the cluster name")


class ClusterArgs(_Args):
    uid: Uid = Field(description="Palette cluster uid")


class ClusterEventsArgs(ClusterArgs):
    severity: Literal["Info", "Warning", "Error"] | None = Field(None, description="Only this severity")


class ClusterCostArgs(ClusterArgs):
    period: Literal["day", "week", "month"] = Field("week", description="Window ending now")


class ListProfilesArgs(_Args):
    cloud_type: CloudType | None = None


class ProfileArgs(_Args):
    uid: Uid = Field(description="Cluster profile uid")


class ListPacksArgs(_Args):
    name: ShortText | None = Field(None, description="Substring of the pack name")
    layer: PackLayer | None = None


class CompareArgs(_Args):
    uid_a: Uid
    uid_b: Uid


class RecommendArgs(_Args):
    workload_description: Annotated[str, Field(min_length=3, max_length=2000)]
    cloud_type: CloudType | None = None


class ValidateConfigurationArgs(_Args):
    cluster_spec: dict[str, Any] = Field(
        description="A create body {metadata: {name, labels}, spec: {cloudType, cloudAccountUid, "
        "cloudConfig, machinepoolconfig, profiles}}"
    )
    cloud_type: CloudType | None = Field(None, description="Defaults to cluster_spec.spec.cloudType")


class CreateClusterArgs(_Args):
    cloud_type: CloudType
    spec: dict[str, Any] = Field(
        description="The Palette create body (v1Spectro<Cloud>ClusterEntity): {metadata: {name, labels}, "
        "spec: {cloudAccountUid, cloudConfig, machinepoolconfig: [{poolConfig: {name, size, labels, "
        "isControlPlane}, cloudConfig: {instanceType}}], profiles: [{uid}]}}"
    )


class PackValue(_Args):
    name: ShortText
    tag: ShortText | None = None
    values: Annotated[str, Field(max_length=64 * 1024)] | None = None


class ProfileRef(_Args):
    uid: Uid
    pack_values: list[PackValue] = Field(default_factory=list, max_length=50)


class UpdateProfilesArgs(_Args):
    uid: Uid = Field(description="Palette cluster uid")
    profiles: list[ProfileRef] = Field(min_length=1, max_length=20)


# -- the create body -------------------------------------------------------------------------
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _PoolConfig(_Open):
    name: ShortText
    size: Annotated[StrictInt, Field(ge=0, le=10_000)]
    labels: list[str]
    isControlPlane: StrictBool = False


class _PoolCloudConfig(_Open):
    instanceType: ShortText


class _MachinePool(_Open):
    poolConfig: _PoolConfig
    cloudConfig: _PoolCloudConfig


class _CreateSpec(_Open):
    cloudType: str | None = None
    cloudAccountUid: ShortText
    cloudConfig: dict[str, Any]
    machinepoolconfig: Annotated[list[_MachinePool], Field(min_length=1, max_length=100)]
    profiles: list[dict[str, Any]] = Field(default_factory=list)


class _CreateMeta(_Open):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    labels: dict[str, str] = Field(default_factory=dict)


class CreateBody(_Open):
    metadata: _CreateMeta
    spec: _CreateSpec


def parse_create_body(body: dict[str, Any], cloud_type: str) -> dict[str, Any]:
    """The create body with ``spec.cloudType`` set, or ``InvalidArguments`` naming each bad
    field (locations and messages only: values could be secrets)."""
    try:
        parsed = CreateBody.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise InvalidArguments(f"the cluster spec is not a valid create body: {problems}") from None
    if parsed.spec.cloudType not in (None, cloud_type):
        raise InvalidArguments(f"spec.cloudType {parsed.spec.cloudType!r} is not cloud_type {cloud_type!r}")
    out = parsed.model_dump(mode="json")
    out["spec"]["cloudType"] = cloud_type
    return out
