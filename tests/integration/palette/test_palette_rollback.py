"""Palette rollbacks through a real MCP session, the real OPA with the project's bundle and the
fake Palette API: a profile update is undone by putting the previous profiles back, a
create by a delete (which needs approval), a delete cannot be undone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_support import approve_and_wait
from mcp_support import reply_body as _body
from mcp_support import reply_text as _text
from palette_mcp_support import API_KEY

from gateway.contracts import Principal
from gateway.local.fake_palette import FakePaletteServer
from gateway.local.fake_palette.samples import aws_create_body as aws_body
from gateway.local.fake_palette.state import DEMO_PROJECT, uid_for
from gateway.palette.tools import open_backend
from gateway.queue.store import QueueStore
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = pytest.mark.integration

BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
STAGING = uid_for(DEMO_PROJECT, "cluster", "staging-web")


def _profile(name: str) -> str:
    return uid_for(DEMO_PROJECT, "profile", name)


def _cluster(palette: FakePaletteServer, uid: str) -> dict[str, Any]:
    """The cluster as Palette holds it (pack values in clear), read behind the gateway's back."""
    headers = {"ApiKey": API_KEY, "ProjectUid": DEMO_PROJECT}
    response = httpx.get(f"{palette.url}/v1/spectroclusters/{uid}", headers=headers, timeout=10)
    response.raise_for_status()
    cluster: dict[str, Any] = response.json()
    return cluster


def _patch_profiles(palette: FakePaletteServer, uid: str, body: dict[str, Any]) -> None:
    headers = {"ApiKey": API_KEY, "ProjectUid": DEMO_PROJECT}
    url = f"{palette.url}/v1/spectroclusters/{uid}/profiles"
    httpx.patch(url, json=body, headers=headers, timeout=10).raise_for_status()


async def _audit_kinds(settings: Settings, tool: str) -> list[str]:
    store = await QueueStore.open(settings.db_path)
    try:
        return [r.kind for r in reversed(await store.audit.recent(limit=50)) if r.tool == tool]
    finally:
        await store.close()


async def test_a_profile_update_rolls_back_to_the_previous_profiles_and_pack_values(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    before = _cluster(palette, STAGING)["spec"]["clusterProfileTemplates"]
    retention = [{"name": "prometheus-operator", "values": "retention: 90d\n"}]
    update = {
        "uid": STAGING,
        "profiles": [
            {"uid": _profile("aws-base-k8s-1.30")},
            {"uid": _profile("observability"), "pack_values": retention},
        ],
    }
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        updated = await client.call_tool("palette_update_cluster_profiles", update)
        assert not updated.is_error, _text(updated)
        assert _cluster(palette, STAGING)["spec"]["clusterProfileTemplates"] != before

        rollback = await client.call_tool("gateway_rollback", {"action_id": _body(updated)["action_id"]})
        assert not rollback.is_error, _text(rollback)
        state = _body(await client.call_tool("gateway_action", {"action_id": _body(updated)["action_id"]}))

    assert _body(rollback)["rolled_back"][0]["inverse"] == "restore_profiles"
    assert _cluster(palette, STAGING)["spec"]["clusterProfileTemplates"] == before
    assert state["rolled_back"]["subject"] == "alice"
    assert "retention: 90d" not in str(rollback.model_dump())


async def test_a_profile_changed_since_is_refused_with_the_change_unless_forced(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    update = {"uid": STAGING, "profiles": [{"uid": _profile("aws-base-k8s-1.30")}]}
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        updated = _body(await client.call_tool("palette_update_cluster_profiles", update))
        _patch_profiles(palette, STAGING, {"profiles": [{"uid": _profile("data-services")}]})  # someone else
        changed = _cluster(palette, STAGING)["spec"]["clusterProfileTemplates"]

        refused = await client.call_tool("gateway_rollback", {"action_id": updated["action_id"]})
        forced = await client.call_tool(
            "gateway_rollback", {"action_id": updated["action_id"], "force": True}
        )

    assert refused.is_error
    assert f"cluster {STAGING} changed since the gateway's write" in _text(refused)
    assert "profiles" in _text(refused)
    assert _body(forced)["outcome"] == "needs_approval"
    assert "OPS-ROLLBACK-001" in _text(forced)
    assert _cluster(palette, STAGING)["spec"]["clusterProfileTemplates"] == changed


async def test_a_created_cluster_is_rolled_back_by_a_delete_that_needs_approval(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    body = aws_body("undo-me", [("workers", 2, "t3.large")], environment="development")
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        created = _body(await client.call_tool("palette_create_cluster", {"cloud_type": "aws", "spec": body}))
        parked = await client.call_tool("gateway_rollback", {"action_id": created["action_id"]})
        assert _body(parked)["outcome"] == "needs_approval", _text(parked)
        assert "PAL-001" in _text(parked)
        assert _cluster(palette, created["uid"])["status"]["state"] == "Provisioning"

        done = await approve_and_wait(client, palette_settings, _body(parked)["action_id"], BOB)
        again = await client.call_tool("gateway_rollback", {"action_id": _body(parked)["action_id"]})

    assert done["state"] == "succeeded", done
    assert done["result"]["rolled_back"][0]["inverse"] == "delete_cluster"
    assert _cluster(palette, created["uid"])["status"]["state"] == "Deleting"
    assert again.is_error
    assert "a deleted Palette cluster cannot be brought back" in _text(again)


async def test_a_deleted_cluster_cannot_be_rolled_back_and_policy_is_not_asked(
    palette_settings: Settings, palette: FakePaletteServer
) -> None:
    body = aws_body("gone-for-good", [("workers", 1, "t3.large")], environment="development")
    async with Client(build_server(palette_settings, backends=[open_backend])) as client:
        created = _body(await client.call_tool("palette_create_cluster", {"cloud_type": "aws", "spec": body}))
        deleting = _body(await client.call_tool("palette_delete_cluster", {"uid": created["uid"]}))
        assert (await approve_and_wait(client, palette_settings, deleting["action_id"], BOB))[
            "state"
        ] == "succeeded"

        refused = await client.call_tool("gateway_rollback", {"action_id": deleting["action_id"]})

    assert refused.is_error
    assert "cannot be rolled back: a deleted Palette cluster cannot be brought back" in _text(refused)
    assert await _audit_kinds(palette_settings, "gateway_rollback") == ["rejected_request"]
