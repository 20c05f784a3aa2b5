"""``k8s_clusters``: the clusters the gateway may use, so the model can pick one per call.

Each allowed context is listed with its name, API server URL, whether it is the default,
whether it answers (``GET /version`` with the gateway's credentials, every cluster at once,
each bounded by the client's timeouts) and the environment policy data gives it. Nothing
about credentials is listed: no user, token, certificate, exec plugin or auth provider.

The call names no cluster (it reaches all of them), so policy judges it as a fleet-wide
read: a principal whose scope lists particular clusters is refused it and told which
clusters its groups may use, as with ``palette_list_clusters``.

The environment comes from policy, not from the cluster: ``data.params.clusters`` as the
decision path judges it (``lib.cluster_environment``). A target's namespace label may still
make it production where the cluster is not; the most restrictive wins there.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from gateway.contracts import Target
from gateway.errors import GatewayError
from gateway.kubernetes.args import ClustersArgs
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.tools_read import kube_spec
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["ClusterTools"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
# Probes at once: a long kubeconfig is probed in a few connect timeouts, not one per cluster.
_PROBES = 8


class ClusterTools:
    def __init__(self, clusters: ClusterPool) -> None:
        self.clusters = clusters

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            kube_spec(
                "k8s_clusters",
                "Kubernetes clusters",
                "The clusters (kubeconfig contexts) the gateway may use, for the 'cluster' argument of "
                "every other k8s_ tool: name, API server, whether it is the default, whether it answers, "
                "and the environment policy gives it.",
                ClustersArgs,
                self.prepare,
                self.clusters_listing,
            )
        ]

    async def prepare(self, args: ClustersArgs) -> list[Prepared]:
        _ = args
        return [Prepared(target=Target())]

    async def clusters_listing(self, args: ClustersArgs, ctx: ExecutionContext) -> JSON:
        _ = args, ctx
        catalog = self.clusters.catalog
        names = list(catalog.names)
        probes: dict[str, JSON] = {}
        limiter = anyio.CapacityLimiter(_PROBES)

        async def probe(name: str) -> None:
            async with limiter:
                probes[name] = await self.clusters.probe(name)

        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(probe, name)
        environments, note = await self._environments(names)
        listed = []
        for name in names:
            context = catalog.context(name)
            listed.append(
                {
                    "name": name,
                    "default": name == catalog.default,
                    "server": context.server,
                    "namespace": context.namespace,
                    "in_cluster": context.in_cluster,
                    "environment": environments.get(name),
                    **probes[name],
                }
            )
        return {
            "clusters": listed,
            "count": len(listed),
            "default": catalog.default,
            "environments_note": note,
        }

    async def _environments(self, names: list[str]) -> tuple[dict[str, str], str | None]:
        lookup = self.clusters.environments
        if lookup is None:
            return {}, "environments unknown: this gateway does not ask policy for them"
        try:
            found = await lookup(names)
        except GatewayError as exc:
            log.warning("k8s_clusters could not ask policy for cluster environments: %s", exc)
            return {}, f"environments unknown: policy could not be asked ({exc})"
        return {k: v for k, v in found.items() if isinstance(v, str)}, None
