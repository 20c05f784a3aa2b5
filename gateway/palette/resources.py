"""The two Palette MCP resources: ``palette://clusters`` (status summary) and
``palette://profiles`` (catalogue).

Resources are reads and go through policy like any tool call: each one calls the core's
``read`` callable with the tool it summarises (``palette_list_clusters``,
``palette_list_profiles``) and the MCP ``Context`` of the request, so the same principal,
decision, redaction and audit apply. Nothing here talks to Palette directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

__all__ = ["ReadFn", "register_resources", "summarise_clusters"]

# (tool name, arguments, MCP context of the request) -> the tool's result after policy.
ReadFn = Callable[[str, dict[str, Any], Context[Any, Any]], Awaitable[Any]]

_ATTENTION_LIMIT = 20


def summarise_clusters(listing: dict[str, Any]) -> dict[str, Any]:
    """Counts by state, health and environment, and the clusters that need attention."""
    rows: list[dict[str, Any]] = listing.get("clusters") or []
    attention = [
        {k: r.get(k) for k in ("uid", "name", "state", "health", "environment")}
        for r in rows
        if r.get("state") != "Running" or r.get("health") != "Healthy"
    ]
    return {
        "total": len(rows),
        "by_state": dict(sorted(Counter(str(r.get("state")) for r in rows).items())),
        "by_health": dict(sorted(Counter(str(r.get("health")) for r in rows).items())),
        "by_environment": dict(sorted(Counter(str(r.get("environment")) for r in rows).items())),
        "nodes": sum(int(r.get("node_count") or 0) for r in rows),
        "needs_attention": attention[:_ATTENTION_LIMIT],
    }


def register_resources(server: MCPServer, *, read: ReadFn) -> None:
    """Register both resources on ``server``; call only when the Palette backend is offered."""

    @server.resource(
        "palette://clusters{?environment}",
        name="palette-clusters",
        title="Palette clusters",
        description="Status summary of the project's clusters: counts by state, health and environment, "
        "and the clusters that need attention.",
        mime_type="application/json",
    )
    async def clusters(ctx: Context[Any, Any], environment: str | None = None) -> dict[str, Any]:
        arguments = {"environment": environment} if environment else {}
        return summarise_clusters(await read("palette_list_clusters", arguments, ctx))

    @server.resource(
        "palette://profiles{?cloud_type}",
        name="palette-profiles",
        title="Palette cluster profiles",
        description="Catalogue of the project's cluster profiles with their packs.",
        mime_type="application/json",
    )
    async def profiles(ctx: Context[Any, Any], cloud_type: str | None = None) -> Any:
        return await read("palette_list_profiles", {"cloud_type": cloud_type} if cloud_type else {}, ctx)

    _ = (clusters, profiles)
