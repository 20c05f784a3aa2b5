"""Palette tools through a real MCP client session, the real OPA with the project's bundle,
and the fake Palette API as a native process (spec-checked after every test)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult
from palette_mcp_support import API_KEY, fake_admin

from gateway.contracts import Principal
from gateway.local.fake_palette import FakePaletteServer
from gateway.local.fake_palette.samples import aws_create_body as aws_body
from gateway.palette.tools import open_backend
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.queue.approvals import approve
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = pytest.mark.integration

BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
CAROL = Principal(subject="carol", groups=("platform-admins",), transport="cli", authenticated=True)


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def _body(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, _text(result)
    return result.structured_content


async def _uid(client: Client, name: str) -> str:
    listing = await client.call_tool("palette_list_clusters", {"name": name})
    return str(next(c["uid"] for c in _body(listing)["clusters"] if c["name"] == name))


async def _wait_for_state(client: Client, action_id: str, wanted: str) -> dict[str, Any]:
    for _ in range(100):
        reply = _body(await client.call_tool("gateway_action", {"action_id": action_id}))
        if reply["state"] == wanted:
            return reply
        await asyncio.sleep(0.1)
    raise AssertionError(f"action {action_id} never reached {wanted}")


async def _approve(settings: Settings, action_id: str, approver: Principal) -> ActionState:
    store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
    try:
        async with PolicyClient(settings) as policy:
            return (await approve(store, policy, action_id, approver)).action.state
    finally:
        await store.close()


async def test_listing_through_mcp_pages_beyond_50_clusters(palette_settings: Settings) -> None:
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("palette_list_clusters", {})
        production = await client.call_tool("palette_list_clusters", {"environment": "production"})
    assert {"palette_list_clusters", "palette_delete_cluster", "palette_validate_configuration"} <= tools
    assert not result.is_error
    assert _body(result)["count"] == 61
    assert {c["name"] for c in _body(production)["clusters"]} == {"prod-payments", "prod-gpu-training"}


async def test_diagnose_and_compare_through_mcp(palette_settings: Settings) -> None:
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        sick, prod = await _uid(client, "staging-web"), await _uid(client, "prod-payments")
        diagnosis = _body(await client.call_tool("palette_diagnose_cluster", {"uid": sick}))
        drift = _body(await client.call_tool("palette_compare_clusters", {"uid_a": prod, "uid_b": sick}))
    assert diagnosis["verdict"] == "critical"
    assert any(f["source"] == "events" for f in diagnosis["findings"])
    assert {"pack": "kubernetes", "layer": "k8s", "a": "1.30.4", "b": "1.29.8"} in drift["packs"][
        "version_drift"
    ]


async def test_small_create_is_allowed_and_executed(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    body = aws_body("team-sandbox", [("workers", 2, "t3.large")], environment="development")
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        result = await client.call_tool("palette_create_cluster", {"cloud_type": "aws", "spec": body})
        assert not result.is_error, _text(result)
        listing = _body(await client.call_tool("palette_list_clusters", {"name": "team-sandbox"}))
    assert _body(result)["created"] is True
    assert listing["clusters"][0]["state"] == "Provisioning"


@pytest.mark.parametrize(
    ("pools", "code"),
    [
        ([("control-plane", 3, "m5.xlarge"), ("gpu", 2, "p4d.24xlarge")], "GPU-001"),
        ([("workers", 30, "t3.large")], "PAL-001"),
    ],
)
async def test_create_with_gpus_or_many_nodes_needs_approval_and_creates_nothing_yet(
    palette_settings: Settings, pools: list[tuple[str, int, str]], code: str
) -> None:
    body = aws_body("needs-a-human", pools, environment="development")
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        result = await client.call_tool("palette_create_cluster", {"cloud_type": "aws", "spec": body})
        after = _body(await client.call_tool("palette_list_clusters", {"name": "needs-a-human"}))
    assert _body(result)["outcome"] == "needs_approval"
    assert code in _text(result)
    assert after["count"] == 0


async def test_delete_in_production_needs_two_approvals_then_runs_once(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        uid = await _uid(client, "prod-payments")
        parked = _body(await client.call_tool("palette_delete_cluster", {"uid": uid}))
        assert parked["outcome"] == "needs_approval"
        assert parked["approval"]["min_approvals"] == 2
        action_id = parked["action_id"]
        assert await _approve(palette_settings, action_id, BOB) == ActionState.PENDING
        got = _body(await client.call_tool("palette_get_cluster", {"uid": uid}))
        assert got["status"]["state"] == "Running"
        assert await _approve(palette_settings, action_id, CAROL) == ActionState.APPROVED
        done = await _wait_for_state(client, action_id, "succeeded")
        got = _body(await client.call_tool("palette_get_cluster", {"uid": uid}))
    assert done["result"] == {"uid": uid, "name": "prod-payments", "deletion_requested": True}
    assert got["status"]["state"] == "Deleting"
    deletes = [r for r in fake_admin(palette, "GET", "requests")["requests"] if r["method"] == "DELETE"]
    assert len(deletes) == 1


async def test_validate_configuration_reports_policy_verdict_without_creating(
    palette_settings: Settings,
) -> None:
    spec = aws_body("what-if-gpu", [("gpu", 2, "g5.2xlarge")], environment="development")
    spec["spec"]["cloudType"] = "aws"
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        result = _body(await client.call_tool("palette_validate_configuration", {"cluster_spec": spec}))
        after = _body(await client.call_tool("palette_list_clusters", {"name": "what-if"}))
    assert result["executed"] is False
    assert result["verdict"]["outcome"] == "needs_approval"
    assert [r["code"] for r in result["verdict"]["reasons"]] == ["GPU-001"]
    assert after["count"] == 0


async def test_a_rate_limited_palette_is_retried_transparently(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    fake_admin(palette, "POST", "throttle", {"count": 2, "status": 429, "retry_after": 0.05})
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        result = await client.call_tool("palette_list_clusters", {})
    assert not result.is_error, _text(result)
    assert _body(result)["count"] == 61
    statuses = fake_admin(palette, "GET", "requests")["requests"]
    assert len(statuses) == 4  # two refused, then two pages


async def test_the_api_key_never_reaches_results_logs_or_the_audit_log(
    palette_settings: Settings, palette: FakePaletteServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        uid = await _uid(client, "staging-web")
        for name, arguments in [
            ("palette_list_clusters", {}),
            ("palette_get_cluster", {"uid": uid}),
            ("palette_get_cluster", {"uid": "no-such-cluster"}),
            ("palette_cluster_events", {"uid": uid}),
            ("palette_cluster_cost", {"uid": uid}),
            ("palette_diagnose_cluster", {"uid": uid}),
            ("palette_delete_cluster", {"uid": uid}),
            ("gateway_check", {"tool": "palette_get_cluster", "arguments": {"uid": uid}}),
        ]:
            result = await client.call_tool(name, arguments)
            outputs.append(_text(result) + json.dumps(result.structured_content))
        fake_admin(palette, "POST", "throttle", {"count": 10, "status": 503, "retry_after": 0})
        failed = await client.call_tool("palette_list_profiles", {})
        outputs.append(_text(failed))
    assert failed.is_error
    assert "503" in _text(failed)
    stored = b"".join(p.read_bytes() for p in palette_settings.db_path.parent.glob("gateway.db*"))
    assert b"palette_delete_cluster" in stored  # the audit log is in there
    assert API_KEY.encode() not in stored
    assert all(API_KEY not in out for out in outputs)
    assert API_KEY not in caplog.text
    assert API_KEY not in palette.process.tail(lines=10_000)


async def _resource(client: Client, uri: str) -> Any:
    text = getattr((await client.read_resource(uri)).contents[0], "text", None)
    assert isinstance(text, str), f"{uri} returned no text"
    return json.loads(text)


async def test_resources_summarise_through_policy_on_the_assembled_server(palette_settings: Settings) -> None:
    async with Client(build_server(palette_settings)) as client:
        clusters = await _resource(client, "palette://clusters")
        production = await _resource(client, "palette://clusters?environment=production")
        profiles = await _resource(client, "palette://profiles")
    assert clusters["total"] == 61
    assert clusters["by_state"] == {"Deleting": 1, "Provisioning": 1, "Running": 59}
    assert {c["name"] for c in clusters["needs_attention"]} == {
        "staging-web",
        "dev-provisioning",
        "old-sandbox",
    }
    assert production["total"] == 2
    assert profiles["count"] == 6
    stored = b"".join(p.read_bytes() for p in palette_settings.db_path.parent.glob("gateway.db*"))
    assert stored.count(b"palette_list_clusters") >= 2  # each read was decided and audited
