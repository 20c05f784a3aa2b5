"""Read tools: list, get, events, logs, cluster info, nodes.

``prepare`` resolves the kind and the target (with its environment) and reads nothing
else; ``execute`` addresses exactly the kind and target policy judged. Results are JSON
objects without managedFields; lists are paged (``continue``) and bounded.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gateway.contracts import Target
from gateway.errors import BackendError, Forbidden
from gateway.kubernetes.args import ClusterInfoArgs, EventsArgs, GetArgs, ListArgs, LogsArgs, NodesArgs
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.images import read_view
from gateway.kubernetes.kinds import ResourceKind
from gateway.kubernetes.views import event_view, node_view
from gateway.tools import ExecutionContext, Prepared, ToolSpec, backend_spec

__all__ = ["ReadTools", "judged_kind", "kube_spec"]

JSON = dict[str, Any]
_EVENT_PAGES = 2
_LOG_BYTES = 1024 * 1024


kube_spec = partial(backend_spec, "kubernetes", idempotent=True)
"""A Kubernetes ``ToolSpec`` (reads are idempotent unless a write says otherwise)."""


async def judged_kind(
    backend: KubeBackend, ctx: ExecutionContext, index: int = 0
) -> tuple[ResourceKind, Target]:
    """The kind and target of action ``index`` as policy judged them."""
    target = ctx.call.actions[index].target
    if not target.api_version or not target.kind:
        raise BackendError("the judged action has no kind; nothing was run")
    return await backend.kinds.for_object(target.api_version, target.kind), target


class ReadTools:
    def __init__(self, clusters: ClusterPool) -> None:
        self.clusters = clusters

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            kube_spec(
                "k8s_list",
                "List Kubernetes objects",
                "List objects of one kind, in a namespace or across all namespaces, filtered by label "
                "or field selector. Returns {items, continue, count}; pass 'continue_token' to page.",
                ListArgs,
                self.prepare_list,
                self.list_objects,
                speculative=True,
            ),
            kube_spec(
                "k8s_get",
                "Get a Kubernetes object",
                "Get one object by kind and name (any kind the cluster serves, custom resources included).",
                GetArgs,
                self.prepare_get,
                self.get,
                speculative=True,
            ),
            kube_spec(
                "k8s_events",
                "Kubernetes events",
                "Recent events, newest first, optionally only those about one kind or object.",
                EventsArgs,
                self.prepare_events,
                self.events,
            ),
            kube_spec(
                "k8s_logs",
                "Pod logs",
                "The last lines of a pod's container log; the number of lines is bounded by policy.",
                LogsArgs,
                self.prepare_logs,
                self.logs,
            ),
            kube_spec(
                "k8s_cluster_info",
                "Cluster information",
                "Kubernetes version, cluster name, namespaces with their environment, node count and "
                "whether live metrics are available.",
                ClusterInfoArgs,
                self.prepare_cluster,
                self.cluster_info,
            ),
            kube_spec(
                "k8s_nodes",
                "Cluster nodes",
                "Nodes with readiness, roles, versions, capacity, allocatable resources and taints, "
                "a page at a time: pass 'continue_token' for the next page.",
                NodesArgs,
                self.prepare_nodes,
                self.nodes,
            ),
        ]

    # -- k8s_list / k8s_get --------------------------------------------------------------

    async def prepare_list(self, args: ListArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind = await backend.kinds.resolve(args.kind)
        target = await backend.target(
            kind, namespace=args.namespace, label_selector=args.label_selector, fresh=False
        )
        return [Prepared(target=target)]

    async def list_objects(self, args: ListArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target = await judged_kind(backend, ctx)
        found = await backend.client.list(
            kind,
            target.namespace,
            label_selector=args.label_selector,
            field_selector=args.field_selector,
            limit=args.limit,
            continue_token=args.continue_token,
        )
        items = [read_view(i, kind=kind.kind, api_version=kind.api_version) for i in found.get("items") or []]
        meta = found.get("metadata") or {}
        return {
            "cluster": target.cluster,
            "kind": kind.kind,
            "apiVersion": kind.api_version,
            "namespace": target.namespace,
            "items": items,
            "continue": meta.get("continue") or None,
            "count": len(items),
            "remaining": meta.get("remainingItemCount"),
        }

    async def prepare_get(self, args: GetArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind = await backend.kinds.resolve(args.kind)
        namespace = backend.require_namespace(kind, args.namespace, tool="k8s_get")
        target = await backend.target(kind, namespace=namespace, name=args.name, fresh=False)
        return [Prepared(target=target)]

    async def get(self, args: GetArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target = await judged_kind(backend, ctx)
        found = await backend.client.get(kind, args.name, target.namespace)
        return read_view(found, kind=kind.kind, api_version=kind.api_version)

    # -- k8s_events ----------------------------------------------------------------------

    async def prepare_events(self, args: EventsArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind = await backend.kinds.for_object("v1", "Event")
        return [Prepared(target=await backend.target(kind, namespace=args.namespace, fresh=False))]

    async def events(self, args: EventsArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target = await judged_kind(backend, ctx)
        selectors = [f"involvedObject.kind={args.kind}"] if args.kind else []
        selectors += [f"involvedObject.name={args.name}"] if args.name else []
        raw: list[JSON] = []
        token: str | None = None
        for _ in range(_EVENT_PAGES):
            page = await backend.client.list(
                kind,
                target.namespace,
                field_selector=",".join(selectors) or None,
                limit=500,
                continue_token=token,
            )
            raw += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
        events = sorted((event_view(e) for e in raw), key=lambda e: e["last_seen"] or "", reverse=True)
        shown = events[: args.limit]
        return {"cluster": target.cluster, "namespace": target.namespace, "items": shown, "count": len(shown),
                "truncated": bool(token)}  # fmt: skip

    # -- k8s_logs ------------------------------------------------------------------------

    async def prepare_logs(self, args: LogsArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind = await backend.kinds.for_object("v1", "Pod")
        target = await backend.target(kind, namespace=args.namespace, name=args.pod, fresh=False)
        return [Prepared(target=target)]

    async def logs(self, args: LogsArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        wanted = args.tail_lines or backend.settings.kube_default_log_lines
        bound = ctx.decision.obligations.max_log_lines
        cap = wanted if bound is None else min(wanted, bound)
        result: JSON = {"cluster": backend.client.cluster, "pod": args.pod, "namespace": args.namespace,
                        "container": args.container}  # fmt: skip
        if cap <= 0:
            return {**result, "lines": [], "line_count": 0, "max_lines": 0, "capped_by_policy": True}
        text = await backend.client.pod_logs(
            args.namespace,
            args.pod,
            container=args.container,
            tail_lines=cap,
            since_seconds=args.since_seconds,
            limit_bytes=_LOG_BYTES,
        )
        # The server honours tailLines; the slice keeps the bound even if it did not.
        lines = text.splitlines()[-cap:]
        return {
            **result,
            "lines": lines,
            "line_count": len(lines),
            "max_lines": cap,
            "capped_by_policy": bound is not None and bound < wanted,
        }

    # -- k8s_cluster_info / k8s_nodes ----------------------------------------------------

    async def prepare_cluster(self, args: ClusterInfoArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        return [Prepared(target=Target(cluster=backend.client.cluster))]

    async def cluster_info(self, args: ClusterInfoArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        version = await backend.client.version()
        namespaces = await backend.client.list(
            await backend.kinds.for_object("v1", "Namespace"), None, limit=500
        )
        try:
            node_count: int | None = await _count(backend, await backend.kinds.for_object("v1", "Node"))
        except Forbidden:
            node_count = None
        return {
            "cluster": backend.client.cluster,
            "server": backend.client.server,
            "version": version.get("gitVersion"),
            "platform": version.get("platform"),
            "namespaces": [
                {"name": ns["metadata"]["name"], "environment": backend.environment_of(ns)}
                for ns in namespaces.get("items") or []
            ],
            "namespaces_truncated": bool((namespaces.get("metadata") or {}).get("continue")),
            "node_count": node_count,
            "metrics_available": await backend.kinds.has_group("metrics.k8s.io"),
        }

    async def prepare_nodes(self, args: NodesArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        kind = await backend.kinds.for_object("v1", "Node")
        return [Prepared(target=await backend.target(kind, namespace=None, fresh=False))]

    async def nodes(self, args: NodesArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        kind, target = await judged_kind(backend, ctx)
        found = await backend.client.list(kind, None, limit=args.limit, continue_token=args.continue_token)
        items = [node_view(n) for n in found.get("items") or []]
        meta = found.get("metadata") or {}
        return {
            "cluster": target.cluster,
            "items": items,
            "count": len(items),
            "ready": sum(1 for n in items if n["ready"]),
            "continue": meta.get("continue") or None,
            "remaining": meta.get("remainingItemCount"),
        }


async def _count(backend: KubeBackend, kind: ResourceKind) -> int:
    """How many objects of ``kind`` exist, from a one-item page: the server says how many
    remain, so nothing is listed to count."""
    page = await backend.client.list(kind, None, limit=1)
    remaining = (page.get("metadata") or {}).get("remainingItemCount")
    return len(page.get("items") or []) + (remaining if isinstance(remaining, int) else 0)
