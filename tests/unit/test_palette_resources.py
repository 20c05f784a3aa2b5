"""The Palette MCP resources read through the provided ``read`` callable (policy's path)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from gateway.palette.resources import register_resources

LISTING = {
    "count": 3,
    "clusters": [
        {
            "uid": "a",
            "name": "prod",
            "state": "Running",
            "health": "Healthy",
            "environment": "production",
            "node_count": 9,
        },
        {
            "uid": "b",
            "name": "stg",
            "state": "Running",
            "health": "UnHealthy",
            "environment": "staging",
            "node_count": 6,
        },
        {
            "uid": "c",
            "name": "dev",
            "state": "Provisioning",
            "health": "Unknown",
            "environment": "development",
            "node_count": 1,
        },
    ],
}


class Reads:
    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse

    async def __call__(self, tool: str, arguments: dict[str, Any], ctx: Any) -> Any:
        self.calls.append((tool, arguments))
        if self.refuse:
            raise PermissionError("denied by policy: PAL-READ")
        return LISTING if tool == "palette_list_clusters" else {"count": 0, "profiles": []}


def _server(reads: Reads) -> MCPServer:
    server: MCPServer = MCPServer("test")
    register_resources(server, read=reads)
    return server


async def test_cluster_resource_is_a_status_summary_read_through_policy() -> None:
    reads = Reads()
    async with Client(_server(reads)) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        content = await client.read_resource("palette://clusters")
    summary = json.loads(content.contents[0].text)  # type: ignore[union-attr]
    assert templates == {"palette://clusters{?environment}", "palette://profiles{?cloud_type}"}
    assert reads.calls == [("palette_list_clusters", {})]
    assert summary["total"] == 3
    assert summary["nodes"] == 16
    assert summary["by_state"] == {"Provisioning": 1, "Running": 2}
    assert [c["name"] for c in summary["needs_attention"]] == ["stg", "dev"]


async def test_resource_query_parameters_become_tool_arguments() -> None:
    reads = Reads()
    async with Client(_server(reads)) as client:
        await client.read_resource("palette://clusters?environment=production")
        await client.read_resource("palette://profiles?cloud_type=aws")
    assert reads.calls == [
        ("palette_list_clusters", {"environment": "production"}),
        ("palette_list_profiles", {"cloud_type": "aws"}),
    ]


async def test_a_refused_read_returns_no_content() -> None:
    async with Client(_server(Reads(refuse=True))) as client:
        with pytest.raises(MCPError):
            await client.read_resource("palette://profiles")
