"""``k8s_resource_usage`` and ``k8s_diagnose``: reads over several kinds, summarised.

Both read at most ``_MAX_ITEMS`` objects per kind (in pages), and say so when a list was
cut. A kind the gateway may not list (RBAC) is skipped and named in ``skipped``, so a
partial answer is never mistaken for a complete one.
"""

from __future__ import annotations

from typing import Any

from gateway.contracts import Target
from gateway.errors import Forbidden, NotFound
from gateway.kubernetes.args import DiagnoseArgs, ResourceUsageArgs
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.diagnose import diagnose
from gateway.kubernetes.tools_read import kube_spec
from gateway.kubernetes.usage import live_usage, usage_report
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["HealthTools"]

JSON = dict[str, Any]
_MAX_ITEMS = 2000
_PAGE = 500
_WORKLOADS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"))


class _Collected:
    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.truncated: list[str] = []


class HealthTools:
    def __init__(self, backend: KubeBackend) -> None:
        self.backend = backend

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
                "A 0-100 health score with findings: crash-looping or pending pods, unready nodes, "
                "workloads short of replicas, warning events, containers without limits.",
                DiagnoseArgs,
                self.prepare,
                self.diagnose,
            ),
        ]

    async def prepare(self, args: ResourceUsageArgs | DiagnoseArgs) -> list[Prepared]:
        target = await self.backend.target(None, namespace=args.namespace, fresh=False)
        return [Prepared(target=target)]

    async def resource_usage(self, args: ResourceUsageArgs, ctx: ExecutionContext) -> JSON:
        namespace = _scope(ctx)
        seen = _Collected()
        workloads = await self._workloads(namespace, seen)
        pods = await self._all("v1", "Pod", namespace, seen)
        report = usage_report(workloads, pods)
        live: JSON | None = None
        note: str | None = "metrics.k8s.io is not served (no metrics-server): live usage unavailable"
        if await self.backend.kinds.has_group("metrics.k8s.io"):
            try:
                metrics = await self._all("metrics.k8s.io/v1beta1", "PodMetrics", namespace, seen)
                live, note = live_usage(metrics), None
            except (NotFound, Forbidden) as exc:
                note = f"live usage unavailable: {exc}"
        _ = args
        return {
            "namespace": namespace,
            **report,
            "live_usage": live,
            "live_usage_note": note,
            "skipped": seen.skipped,
            "truncated": seen.truncated,
        }

    async def diagnose(self, args: DiagnoseArgs, ctx: ExecutionContext) -> JSON:
        namespace = _scope(ctx)
        seen = _Collected()
        pods = await self._all("v1", "Pod", namespace, seen)
        workloads = await self._workloads(namespace, seen)
        events = await self._all("v1", "Event", namespace, seen, field_selector="type=Warning")
        nodes = None if namespace else await self._all("v1", "Node", None, seen)
        if nodes is not None and "Node" in seen.skipped:
            nodes = None
        _ = args
        report = diagnose(pods=pods, workloads=workloads, events=events, nodes=nodes)
        return {"namespace": namespace, **report, "skipped": seen.skipped, "truncated": seen.truncated}

    async def _workloads(self, namespace: str | None, seen: _Collected) -> list[JSON]:
        found: list[JSON] = []
        for api_version, kind in _WORKLOADS:
            items = await self._all(api_version, kind, namespace, seen)
            found += [{**item, "kind": kind, "apiVersion": api_version} for item in items]
        return found

    async def _all(
        self,
        api_version: str,
        kind_name: str,
        namespace: str | None,
        seen: _Collected,
        *,
        field_selector: str | None = None,
    ) -> list[JSON]:
        kind = await self.backend.kinds.for_object(api_version, kind_name)
        items: list[JSON] = []
        token: str | None = None
        try:
            while True:
                page = await self.backend.client.list(
                    kind, namespace, field_selector=field_selector, limit=_PAGE, continue_token=token
                )
                items += page.get("items") or []
                token = (page.get("metadata") or {}).get("continue") or None
                if not token or len(items) >= _MAX_ITEMS:
                    break
        except Forbidden:
            seen.skipped.append(kind_name)
            return []
        if token:
            seen.truncated.append(kind_name)
        return items


def _scope(ctx: ExecutionContext) -> str | None:
    target: Target = ctx.call.actions[0].target
    return target.namespace
