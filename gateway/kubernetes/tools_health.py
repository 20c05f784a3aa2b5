"""``k8s_resource_usage`` and ``k8s_diagnose``: reads over several kinds, summarised.

Both read each kind a page at a time (``Settings.kube_scan_page_size``) and fold every
page into a running tally (``Diagnosis``, ``UsageTally``) before reading the next, so
memory stays bounded by a page and the report, whatever the cluster's size. At most
``Settings.kube_scan_max_items`` objects are read per kind; a kind cut there is named in
``truncated``, and the answer says how many pages it read. A kind the gateway may not
list (RBAC) is skipped and named in ``skipped``, so a partial answer is never mistaken
for a complete one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.contracts import Target
from gateway.errors import Forbidden, NotFound
from gateway.kubernetes.args import DiagnoseArgs, ResourceUsageArgs
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.diagnose import Diagnosis
from gateway.kubernetes.tools_read import kube_spec
from gateway.kubernetes.usage import UsageTally, live_usage
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["HealthTools"]

JSON = dict[str, Any]
Page = list[JSON]
_WORKLOADS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"))


class _Scan:
    """What a scan read: pages, objects, and the kinds it skipped or cut short."""

    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.truncated: list[str] = []
        self.pages = 0
        self.objects = 0

    def as_json(self) -> JSON:
        return {"skipped": self.skipped, "truncated": self.truncated,
                "scan": {"pages": self.pages, "objects": self.objects}}  # fmt: skip


class HealthTools:
    def __init__(self, clusters: ClusterPool) -> None:
        self.clusters = clusters

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            kube_spec(
                "k8s_resource_usage",
                "Resource requests and limits",
                "CPU, memory and other requests and limits by namespace and workload (template x "
                "replicas), with containers lacking limits; live usage when metrics-server answers.",
                ResourceUsageArgs,
                self.prepare,
                self.resource_usage,
            ),
            kube_spec(
                "k8s_diagnose",
                "Diagnose cluster health",
                "A 0-100 health score with findings that name the object and the cause: crash-looping, "
                "OOM-killed or image-pull-failing containers, unschedulable pods, unready nodes, "
                "workloads short of replicas, warning events, containers without limits.",
                DiagnoseArgs,
                self.prepare,
                self.diagnose,
            ),
        ]

    async def prepare(self, args: ResourceUsageArgs | DiagnoseArgs) -> list[Prepared]:
        backend = await self.clusters.for_args(args)
        target = await backend.target(None, namespace=args.namespace, fresh=False)
        return [Prepared(target=target)]

    async def resource_usage(self, args: ResourceUsageArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        namespace = _scope(ctx)
        scan = _Scan()
        tally = UsageTally()
        await _workloads(backend, namespace, scan, tally.workloads)
        await _scan(backend, "v1", "Pod", namespace, scan, tally.pods)
        live: JSON | None = None
        note: str | None = "metrics.k8s.io is not served (no metrics-server): live usage unavailable"
        if await backend.kinds.has_group("metrics.k8s.io"):
            metrics: Page = []
            try:
                await _scan(backend, "metrics.k8s.io/v1beta1", "PodMetrics", namespace, scan, metrics.extend)
                live, note = live_usage(metrics), None
            except (NotFound, Forbidden) as exc:
                note = f"live usage unavailable: {exc}"
        return {"cluster": backend.client.cluster, "namespace": namespace, **tally.report(),
                "live_usage": live, "live_usage_note": note, **scan.as_json()}  # fmt: skip

    async def diagnose(self, args: DiagnoseArgs, ctx: ExecutionContext) -> JSON:
        backend = await self.clusters.judged(args, ctx)
        namespace = _scope(ctx)
        scan = _Scan()
        diagnosis = Diagnosis(nodes_examined=namespace is None)
        await _scan(backend, "v1", "Pod", namespace, scan, diagnosis.pods)
        await _workloads(backend, namespace, scan, diagnosis.workloads)
        await _scan(backend, "v1", "Event", namespace, scan, diagnosis.events, field_selector="type=Warning")
        if namespace is None:
            await _scan(backend, "v1", "Node", None, scan, diagnosis.nodes)
            if "Node" in scan.skipped:
                diagnosis.nodes_examined = False
        return {
            "cluster": backend.client.cluster,
            "namespace": namespace,
            **diagnosis.report(),
            **scan.as_json(),
        }


async def _workloads(
    backend: KubeBackend, namespace: str | None, scan: _Scan, fold: Callable[[Page], None]
) -> None:
    for api_version, kind in _WORKLOADS:

        def with_kind(page: Page, kind: str = kind, api_version: str = api_version) -> None:
            fold([{**item, "kind": kind, "apiVersion": api_version} for item in page])

        await _scan(backend, api_version, kind, namespace, scan, with_kind)


async def _scan(
    backend: KubeBackend,
    api_version: str,
    kind_name: str,
    namespace: str | None,
    scan: _Scan,
    fold: Callable[[Page], Any],
    *,
    field_selector: str | None = None,
) -> None:
    """Read one kind page by page into ``fold``, up to the configured bound."""
    kind = await backend.kinds.for_object(api_version, kind_name)
    settings = backend.settings
    page_size, bound = settings.kube_scan_page_size, settings.kube_scan_max_items
    token: str | None = None
    read = 0
    try:
        while True:
            page = await backend.client.list(
                kind, namespace, field_selector=field_selector, limit=min(page_size, bound - read),
                continue_token=token,
            )  # fmt: skip
            items = page.get("items") or []
            scan.pages += 1
            read += len(items)
            fold(items)
            token = (page.get("metadata") or {}).get("continue") or None
            if not token or read >= bound:
                break
    except Forbidden:
        scan.skipped.append(kind_name)
        return
    scan.objects += read
    if token:
        scan.truncated.append(kind_name)


def _scope(ctx: ExecutionContext) -> str | None:
    target: Target = ctx.call.actions[0].target
    return target.namespace
