"""The Kubernetes backend as the core sees it: ``open_backend(settings)`` yields the tools.

    async with open_backend(settings, policy) as specs:
        registry.extend(specs)
        ...

The contexts the gateway may use are read once on entry (``load_catalog``); the default
context's client is built then, so a kubeconfig that cannot be used at all stops start-up
with its reason, while nothing is sent until the first call (a gateway starts even while
its clusters are unreachable). The other contexts get their clients on first use
(``ClusterPool``). Every client is closed on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import anyio.to_thread

from gateway.errors import BackendError, ConfigError
from gateway.kubernetes.args import for_clusters
from gateway.kubernetes.client import KubeClient, load_catalog
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.reversal import KubeReverser, pool_clusters
from gateway.kubernetes.tools_clusters import ClusterTools
from gateway.kubernetes.tools_health import HealthTools
from gateway.kubernetes.tools_patch import PatchTools
from gateway.kubernetes.tools_read import ReadTools
from gateway.kubernetes.tools_write import WriteTools
from gateway.ports import BackendPolicy
from gateway.settings import Settings
from gateway.tools import ToolSpec

__all__ = ["TOOL_NAMES", "build_specs", "open_backend"]

log = logging.getLogger(__name__)

TOOL_NAMES = (
    "k8s_clusters",
    "k8s_list",
    "k8s_get",
    "k8s_events",
    "k8s_logs",
    "k8s_cluster_info",
    "k8s_nodes",
    "k8s_resource_usage",
    "k8s_diagnose",
    "k8s_apply",
    "k8s_delete",
    "k8s_scale",
    "k8s_restart",
    "k8s_set_resources",
)


def build_specs(clusters: ClusterPool) -> list[ToolSpec[Any]]:
    """Every Kubernetes tool over one pool of clusters, in ``TOOL_NAMES`` order; each tool's
    ``cluster`` argument bound to the pool's catalog (``for_clusters``); the writes carry how
    their changes are undone (``gateway_rollback``), on the cluster they were made on."""
    specs = [
        *ClusterTools(clusters).specs(),
        *ReadTools(clusters).specs(),
        *HealthTools(clusters).specs(),
        *WriteTools(clusters).specs(),
        *PatchTools(clusters).specs(),
    ]
    undo = KubeReverser(pool_clusters(clusters))
    by_name: dict[str, ToolSpec[Any]] = {}
    for spec in specs:
        if "cluster" in spec.args.model_fields:
            spec = replace(spec, args=for_clusters(spec.args, clusters.catalog))
        by_name[spec.name] = spec if spec.effect == "read" else replace(spec, undo=undo)
    return [by_name[name] for name in TOOL_NAMES]


@asynccontextmanager
async def open_backend(
    settings: Settings, policy: BackendPolicy | None = None
) -> AsyncIterator[list[ToolSpec[Any]]]:
    """Read the contexts, build the default context's client, yield the tool specs, close
    every client on exit.

    The signature is a ``gateway.runtime.ToolSource``; ``policy`` gives ``k8s_clusters``
    the environments policy data assigns. With no Kubernetes configuration at all (none in
    settings, not in a pod, no default kubeconfig) it yields no tools; a configuration that
    exists but cannot be used raises ``ConfigError``.
    """
    notes: list[str] = []
    # Reading a kubeconfig and loading credentials (an exec plugin) stay off the event loop.
    catalog = await anyio.to_thread.run_sync(load_catalog, settings, notes)
    for note in notes:
        log.warning("kubeconfig: %s", note)
    if catalog is None:
        log.info("no Kubernetes configuration (GATEWAY_KUBECONFIG, in-cluster, ~/.kube/config): no k8s tools")
        yield []
        return
    connect = partial(KubeClient.connect, settings=settings, kubeconfig=catalog.kubeconfig)
    pool = ClusterPool(
        catalog, settings, connect, environments=policy.cluster_environments if policy is not None else None
    )
    try:
        if catalog.default is not None:
            try:
                await pool.backend(catalog.default)
            except BackendError as exc:
                raise ConfigError(f"the default cluster cannot be used: {exc}") from exc
        log.info(
            "Kubernetes backend: %d cluster(s) (%s), default %r",
            len(catalog),
            catalog.listed(),
            catalog.default,
        )
        yield build_specs(pool)
    finally:
        pool.close()
