"""What the suites that drive the gateway through an MCP client share: a reply's text and
structured body, and a human approving a parked action from the side."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

from gateway.contracts import Principal
from gateway.policy import PolicyClient
from gateway.queue.approvals import approve
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.settings import Settings


def reply_text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def reply_body(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, reply_text(result)
    return result.structured_content


async def approve_and_wait(
    mcp: Client, settings: Settings, action_id: str, approver: Principal
) -> dict[str, Any]:
    """Approve a parked action as ``approver`` (straight on the store, as ``gateway queue
    approve --local`` does) and wait until the gateway behind ``mcp`` has run it; the
    action's final state as ``gateway_action`` reports it."""
    store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
    try:
        async with PolicyClient(settings) as policy:
            await approve(store, policy, action_id, approver)
    finally:
        await store.close()
    for _ in range(100):
        state = reply_body(await mcp.call_tool("gateway_action", {"action_id": action_id}))
        if state["state"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.1)
    return state
