"""The gateway over streamable HTTP (uvicorn on a free loopback port, bearer tokens, the
real ``opa`` binary): the principal is the authenticated caller, never an argument."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
import uvicorn
from gateway_support import EchoBackend, settings_for
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.auth import append_token
from gateway.http import build_app
from gateway.local.opa import OpaServer
from gateway.local.process import free_port
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = pytest.mark.integration


@asynccontextmanager
async def _serving(settings: Settings, backend: EchoBackend) -> AsyncIterator[str]:
    app = build_app(build_server(settings, backends=[backend.source()]), settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.port}/mcp"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


def _client(url: str, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http))


async def test_calls_over_http_act_as_the_token_holder(opa: OpaServer, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = append_token(tokens, subject="carol", groups=("sre",))
    settings = settings_for(opa.url, tmp_path, tokens_file=tokens, port=free_port(), subject="stdio-user")
    backend = EchoBackend()
    async with _serving(settings, backend) as url, _client(url, token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        read = await client.call_tool("echo_read", {"text": "over http"})
        denied = await client.call_tool("echo_delete", {"name": "web", "replicas": 1})
        parked = await client.call_tool("echo_scale", {"name": "web", "replicas": 2})
    assert {"echo_read", "gateway_check"} <= names
    assert read.structured_content is not None
    assert read.structured_content["text"] == "over http"
    assert read.structured_content["token"] == "<redacted>"
    assert denied.is_error
    assert parked.structured_content is not None
    assert parked.structured_content["outcome"] == "needs_approval"

    store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
    try:
        [action] = await store.list_actions()
        stored = await store.get(action.id)
        events = await store.audit.recent(limit=20)
    finally:
        await store.close()
    assert (stored.requester.subject, stored.requester.transport) == ("carol", "http")
    assert stored.requester.groups == ("sre",)
    decisions = [e for e in events if e.kind == "decision"]
    assert {(e.subject, e.transport) for e in decisions} == {("carol", "http")}


async def test_a_request_without_a_valid_token_reaches_nothing(opa: OpaServer, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    append_token(tokens, subject="carol", groups=())
    settings = settings_for(opa.url, tmp_path, tokens_file=tokens, port=free_port())
    backend = EchoBackend()
    async with _serving(settings, backend) as url, httpx.AsyncClient() as http:
        response = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo_read"}},
            headers={"Authorization": "Bearer not-a-token", "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert backend.prepared == 0
