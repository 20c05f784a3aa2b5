"""The Palette backend as the core sees it: ``open_backend(settings, check)`` yields the tools.

    async with open_backend(settings, check) as specs:
        registry.extend(specs)
        ...

One Palette client is created on entry and closed on exit; the tools are classes over one
``PaletteBackend``, as the Kubernetes tools are over one ``KubeBackend``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from gateway.palette.backend import CheckFn, PaletteBackend
from gateway.palette.client import PaletteClient, Transport
from gateway.palette.resources import ReadFn, register_resources
from gateway.palette.reversal import PaletteReverser
from gateway.palette.tools_read import CatalogueTools, ClusterTools
from gateway.palette.tools_write import ConfigurationTools, WriteTools
from gateway.settings import Settings
from gateway.tools import ToolSpec

__all__ = [
    "TOOL_NAMES",
    "CheckFn",
    "ReadFn",
    "build_specs",
    "open_backend",
    "palette_configured",
    "register_resources",
]

log = logging.getLogger(__name__)

TOOL_NAMES = (
    "palette_list_clusters",
    "palette_get_cluster",
    "palette_cluster_events",
    "palette_cluster_cost",
    "palette_list_profiles",
    "palette_get_profile",
    "palette_list_packs",
    "palette_diagnose_cluster",
    "palette_compare_clusters",
    "palette_recommend_profile",
    "palette_create_cluster",
    "palette_delete_cluster",
    "palette_update_cluster_profiles",
    "palette_validate_configuration",
)


def palette_configured(settings: Settings) -> bool:
    """True when ``PALETTE_HOST`` and a non-empty ``PALETTE_API_KEY`` are set (for the local
    sandbox, ``FakePaletteServer.environment()`` provides both)."""
    key = settings.palette_api_key
    return bool(settings.palette_host) and key is not None and bool(key.get_secret_value())


def build_specs(backend: PaletteBackend) -> list[ToolSpec[Any]]:
    """Every Palette tool over one backend, in ``TOOL_NAMES`` order; the writes carry how
    their changes are undone (``gateway_rollback``)."""
    specs = [
        *ClusterTools(backend).specs(),
        *CatalogueTools(backend).specs(),
        *WriteTools(backend).specs(),
        *ConfigurationTools(backend).specs(),
    ]
    undo = PaletteReverser(backend)
    by_name = {spec.name: spec if spec.effect == "read" else replace(spec, undo=undo) for spec in specs}
    return [by_name[name] for name in TOOL_NAMES]


@asynccontextmanager
async def open_backend(
    settings: Settings, check: CheckFn, *, transport: Transport | None = None
) -> AsyncIterator[list[ToolSpec[Any]]]:
    """The Palette tools, or ``[]`` when Palette is not configured (the backend is then not
    offered at all). ``check(tool, arguments)`` is the core's policy check without execution,
    used by ``palette_validate_configuration``. The signature is a ``gateway.runtime.ToolSource``:
    ``open_backend`` itself goes in the server's list of backends."""
    if not palette_configured(settings):
        log.info("Palette is not configured (PALETTE_HOST, PALETTE_API_KEY): no Palette tools")
        yield []
        return
    async with PaletteClient.from_settings(settings, transport=transport) as client:
        yield build_specs(PaletteBackend(client, settings, check))
