"""The arguments contract of every Kubernetes tool: field descriptions become the MCP
input schema the model reads, validators reject bad names before anything is sent.

Every tool but ``k8s_clusters`` takes ``cluster``, a kubeconfig context. The models here
accept any well-formed name; ``for_clusters`` derives, once the backend knows its
contexts, the model a tool is registered with: ``cluster`` defaults to the default
context and is checked against the allowed ones, which the input schema lists, so an
unknown or disallowed cluster is refused at admission like any other bad argument.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from gateway.kubernetes.contexts import MAX_LISTED, ClusterCatalog, valid_context_name
from gateway.kubernetes.names import ContainerName, KindName, NamespaceName, ObjectName, ResourceMap

__all__ = [
    "ApplyArgs",
    "ClusterInfoArgs",
    "ClustersArgs",
    "DeleteArgs",
    "DiagnoseArgs",
    "EventsArgs",
    "GetArgs",
    "ListArgs",
    "LogsArgs",
    "NodesArgs",
    "ResourceUsageArgs",
    "RestartArgs",
    "ScaleArgs",
    "SetResourcesArgs",
    "WorkloadArgs",
    "for_clusters",
]

MAX_LIST_LIMIT = 500

_KIND = (
    "Kind, plural or short name: 'Deployment', 'deployments', 'deploy', 'po', "
    "or 'plural.group' for custom resources."
)
_NAMESPACE_OPTIONAL = "Namespace. Leave out for cluster-scoped kinds, or to cover all namespaces."
_NAMESPACE = "Namespace of the object."
_SELECTOR = r"^[A-Za-z0-9_./!=,()\s-]*$"


ArgsT = TypeVar("ArgsT", bound=BaseModel)
_CLUSTER = "Cluster to act on: a kubeconfig context name (k8s_clusters lists them)."


def _cluster_name(value: str) -> str:
    if not valid_context_name(value):
        raise ValueError("not a cluster name: give a kubeconfig context name (k8s_clusters lists them)")
    return value


ClusterName = Annotated[str, Field(max_length=253), AfterValidator(_cluster_name)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Args(_Base):
    cluster: ClusterName | None = Field(default=None, description=_CLUSTER)


def for_clusters(model: type[ArgsT], catalog: ClusterCatalog) -> type[ArgsT]:
    """``model`` with ``cluster`` bound to ``catalog``: one of its contexts (the same
    refusal, listing the allowed ones, whether or not the kubeconfig holds the name),
    defaulting to its default context, required when there is none."""

    def allowed(value: str) -> str:
        if value not in catalog:
            raise ValueError(catalog.unknown_message())
        return value

    names = list(catalog.names)
    extra: dict[str, Any] = {"enum": names} if len(names) <= MAX_LISTED else {}
    if catalog.default is not None:
        described = f"{_CLUSTER} Default: {catalog.default!r}."
        field = Field(default=catalog.default, description=described, json_schema_extra=extra)
    else:
        described = f"{_CLUSTER} Required: no default cluster is configured."
        field = Field(description=described, json_schema_extra=extra)
    cluster_type: Any = Annotated[str, Field(max_length=253), AfterValidator(allowed)]
    bound: type[ArgsT] = create_model(
        model.__name__,
        __base__=model,
        __module__=model.__module__,
        __doc__=model.__doc__,
        cluster=(cluster_type, field),
    )
    return bound


class ListArgs(_Args):
    kind: KindName = Field(description=_KIND)
    namespace: NamespaceName | None = Field(default=None, description=_NAMESPACE_OPTIONAL)
    label_selector: Annotated[str, Field(max_length=1024, pattern=_SELECTOR)] | None = Field(
        default=None, description="Label selector, e.g. 'app=web,tier!=cache' or 'env in (prod,staging)'."
    )
    field_selector: Annotated[str, Field(max_length=1024, pattern=_SELECTOR)] | None = Field(
        default=None, description="Field selector, e.g. 'status.phase=Running' or 'spec.nodeName=node-1'."
    )
    limit: int = Field(default=100, ge=1, le=MAX_LIST_LIMIT, description="Page size (1-500, default 100).")
    continue_token: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="The 'continue' token of the previous page, to fetch the next one."
    )


class GetArgs(_Args):
    kind: KindName = Field(description=_KIND)
    name: ObjectName = Field(description="Name of the object.")
    namespace: NamespaceName | None = Field(
        default=None, description="Namespace of the object; leave out for cluster-scoped kinds."
    )


class EventsArgs(_Args):
    namespace: NamespaceName | None = Field(
        default=None, description="Namespace; leave out for all namespaces."
    )
    kind: Annotated[str, Field(max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9]*$")] | None = Field(
        default=None, description="Only events about objects of this Kind, e.g. 'Pod' or 'Deployment'."
    )
    name: ObjectName | None = Field(default=None, description="Only events about the object with this name.")
    limit: int = Field(default=100, ge=1, le=MAX_LIST_LIMIT, description="Most recent events to return.")


class LogsArgs(_Args):
    pod: ObjectName = Field(description="Pod name.")
    namespace: NamespaceName = Field(description="Namespace of the pod.")
    container: ContainerName | None = Field(
        default=None, description="Container; required when the pod has more than one."
    )
    tail_lines: int | None = Field(
        default=None, ge=1, le=10000, description="Last lines to return (bounded by policy)."
    )
    since_seconds: int | None = Field(
        default=None, ge=1, le=7 * 24 * 3600, description="Only lines from the last N seconds."
    )


class ClusterInfoArgs(_Args):
    pass


class ClustersArgs(_Base):
    """``k8s_clusters`` lists every cluster: it takes no ``cluster`` itself."""


class NodesArgs(_Args):
    limit: int = Field(default=100, ge=1, le=MAX_LIST_LIMIT, description="Page size (1-500, default 100).")
    continue_token: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="The 'continue' token of the previous page, to fetch the next one."
    )


class ResourceUsageArgs(_Args):
    namespace: NamespaceName | None = Field(
        default=None, description="Namespace; leave out for all namespaces."
    )


class DiagnoseArgs(_Args):
    namespace: NamespaceName | None = Field(
        default=None, description="Namespace to diagnose; leave out for the whole cluster (nodes included)."
    )


class ApplyArgs(_Args):
    manifest: Annotated[str, Field(min_length=1)] = Field(
        description=(
            "One or more Kubernetes objects as YAML (documents separated by '---') or JSON. Each needs "
            "apiVersion, kind, metadata.name, and metadata.namespace when the kind is namespaced."
        )
    )


class DeleteArgs(_Args):
    kind: KindName = Field(description=_KIND)
    name: ObjectName = Field(description="Name of the object to delete.")
    namespace: NamespaceName | None = Field(
        default=None, description="Namespace of the object; required for namespaced kinds."
    )


class WorkloadArgs(_Args):
    kind: KindName = Field(
        description="Workload kind: Deployment, StatefulSet, DaemonSet (or their short names)."
    )
    name: ObjectName = Field(description="Name of the workload.")
    namespace: NamespaceName = Field(description=_NAMESPACE)


class ScaleArgs(WorkloadArgs):
    replicas: int = Field(ge=0, le=10000, description="Desired number of replicas.")


class RestartArgs(WorkloadArgs):
    pass


class SetResourcesArgs(WorkloadArgs):
    container: ContainerName = Field(description="Name of the container in the pod template.")
    requests: ResourceMap | None = Field(
        default=None, description="Requests to set, e.g. {'cpu': '250m', 'memory': '256Mi'}."
    )
    limits: ResourceMap | None = Field(
        default=None, description="Limits to set, e.g. {'cpu': '1', 'memory': '512Mi'}."
    )

    @model_validator(mode="after")
    def _something_to_set(self) -> SetResourcesArgs:
        if not self.requests and not self.limits:
            raise ValueError("give 'requests', 'limits' or both")
        return self
