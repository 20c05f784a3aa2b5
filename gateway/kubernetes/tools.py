"""The Kubernetes backend as the core sees it: ``open_backend(settings)`` yields the tools.

    async with open_backend(settings) as specs:
        registry.extend(specs)
        ...

One ``ApiClient`` is created on entry (credentials loaded once; nothing is sent until the
first call, so a gateway starts even while the cluster is unreachable) and closed on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread

from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.client import KubeClient
from gateway.kubernetes.tools_health import HealthTools
from gateway.kubernetes.tools_patch import PatchTools
from gateway.kubernetes.tools_read import ReadTools
from gateway.kubernetes.tools_write import WriteTools
from gateway.settings import Settings
from gateway.tools import ToolSpec

__all__ = ["TOOL_NAMES", "build_specs", "open_backend"]

log = logging.getLogger(__name__)

TOOL_NAMES = (
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


def build_specs(backend: KubeBackend) -> list[ToolSpec[Any]]:
    """Every Kubernetes tool over one backend, in ``TOOL_NAMES`` order."""
    specs = [
        *ReadTools(backend).specs(),
        *HealthTools(backend).specs(),
        *WriteTools(backend).specs(),
        *PatchTools(backend).specs(),
    ]
    by_name = {spec.name: spec for spec in specs}
    return [by_name[name] for name in TOOL_NAMES]


@asynccontextmanager
async def open_backend(
    settings: Settings, check: Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]] | None = None
) -> AsyncIterator[list[ToolSpec[Any]]]:
    """Create the client once, yield the tool specs, close the client on exit.

    The signature is a ``gateway.runtime.ToolSource`` (``check`` is not needed here). With no
    Kubernetes configuration at all (none in settings, not in a pod, no default kubeconfig)
    it yields no tools; a configuration that exists but cannot be used raises ``ConfigError``.
    """
    _ = check
    # Loading a kubeconfig may run an exec credential plugin: keep it off the event loop.
    client = await anyio.to_thread.run_sync(KubeClient.from_settings, settings)
    if client is None:
        log.info("no Kubernetes configuration (GATEWAY_KUBECONFIG, in-cluster, ~/.kube/config): no k8s tools")
        yield []
        return
    log.info("Kubernetes backend: cluster %r at %s", client.cluster, client.server)
    try:
        yield build_specs(KubeBackend(client, settings))
    finally:
        client.close()
