"""``GATEWAY_ANONYMOUS=read-only`` end to end: the real server behind the HTTP app, the real
OPA and the fake Palette API. A caller without a token reads; policy refuses it anything
else, and nothing reaches the backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import mcp_client, serving

from gateway.http import build_app
from gateway.local.fake_palette import FakePaletteServer
from gateway.local.opa import OpaServer
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def palette(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePaletteServer]:
    server = FakePaletteServer(api_key="anonymous-test", log_path=tmp_path_factory.mktemp("palette") / "log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _settings(tmp_path: Path, opa: OpaServer, palette: FakePaletteServer) -> Settings:
    return Settings.model_validate(
        {
            "opa_url": opa.url,
            "db_path": tmp_path / "gateway.db",
            "anonymous": "read-only",
            "kubeconfig": tmp_path / "no-kubeconfig",
            "PALETTE_HOST": palette.url,
            "PALETTE_API_KEY": palette.api_key,
            "PALETTE_PROJECT_UID": palette.project,
        }
    )


async def test_anonymous_caller_reads_but_policy_refuses_it_a_delete(
    tmp_path: Path, opa_server: OpaServer, palette: FakePaletteServer
) -> None:
    settings = _settings(tmp_path, opa_server, palette)
    async with serving(build_app(build_server(settings), settings)) as url, mcp_client(url) as client:
        listed = await client.call_tool("palette_list_clusters", {})
        assert not listed.is_error, listed.content
        clusters = (listed.structured_content or {})["clusters"]
        assert clusters, listed.structured_content
        uid = clusters[0]["uid"]
        deleted = await client.call_tool("palette_delete_cluster", {"uid": uid})
        still_there = await client.call_tool("palette_get_cluster", {"uid": uid})
    assert deleted.is_error
    body = deleted.structured_content or {}
    assert body.get("outcome") == "deny", body
    assert any("anonymous" in r["message"] for r in body["reasons"]), body["reasons"]
    assert not still_there.is_error
