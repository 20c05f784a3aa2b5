"""The Palette backend's factory: ``open_backend`` yields its ``ToolSpec``s for as long as the
gateway runs, with one Palette client created on entry and closed on exit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gateway.palette.client import PaletteClient
from gateway.palette.resources import ReadFn, register_resources
from gateway.palette.tools_read import read_tools
from gateway.palette.tools_write import CheckFn, write_tools
from gateway.settings import Settings
from gateway.tools import ToolSpec

__all__ = ["CheckFn", "ReadFn", "build_tools", "open_backend", "palette_configured", "register_resources"]

log = logging.getLogger(__name__)


def palette_configured(settings: Settings) -> bool:
    """True when ``PALETTE_HOST`` and a non-empty ``PALETTE_API_KEY`` are set (for the local
    sandbox, ``FakePaletteServer.environment()`` provides both)."""
    key = settings.palette_api_key
    return bool(settings.palette_host) and key is not None and bool(key.get_secret_value())


def build_tools(client: PaletteClient, settings: Settings, *, check: CheckFn) -> list[ToolSpec[Any]]:
    label = settings.environment_label
    return [*read_tools(client, label), *write_tools(client, label, check=check)]


@asynccontextmanager
async def open_backend(
    settings: Settings, check: CheckFn, *, transport: httpx.AsyncBaseTransport | None = None
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
        yield build_tools(client, settings, check=check)
