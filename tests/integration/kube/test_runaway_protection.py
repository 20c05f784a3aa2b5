"""Runaway protection end to end: an MCP session deleting in a loop against the real
kube-apiserver, judged by the real OPA with the project's rules; the counts live in the
gateway database, so they hold across a restart, and they are per principal.

The project's data makes every delete wait for a human (destructive_actions). A team
that lets agents delete in development sets that rule to warn; then the runaway rule is
what stops a loop, which is what these tests run: the project's bundle with that one
mode changed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from mcp import Client
from mcp_types import CallToolResult
from storage_fixtures import Backend

from gateway.kubernetes.tools import open_backend
from gateway.local.opa import OpaServer, build_bundle
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

REGO = Path(__file__).resolve().parents[3] / "rego"
LOOP = 30


@pytest.fixture(scope="module")
def deleting_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    """The project's rules and data, with destructive_actions in warn mode."""
    tmp = tmp_path_factory.mktemp("runaway-opa")
    rego = tmp / "rego"
    shutil.copytree(REGO, rego, ignore=shutil.ignore_patterns("*_test.rego", "samples"))
    data = json.loads((rego / "data.json").read_text())
    data["params"]["modes"]["destructive_actions"] = "warn"
    (rego / "data.json").write_text(json.dumps(data))
    server = OpaServer(build_bundle(rego, tmp / "b.tar.gz", revision="runaway"), log_path=tmp / "opa.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def namespace(kube_admin: Any) -> Iterator[str]:
    """A development namespace with LOOP + 2 ConfigMaps to delete."""
    name = f"loop-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespace({"metadata": {"name": name, "labels": {"environment": "development"}}})
    for i in range(LOOP + 2):
        core.create_namespaced_config_map(name, {"metadata": {"name": f"cache-{i}"}, "data": {"n": str(i)}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def as_principal(
    kube_settings: Settings, kube_seeded: Any, deleting_opa: OpaServer, backend: Backend
) -> Callable[[str], Settings]:
    """Settings of a gateway on the test's database, the sandbox and the deleting policy,
    serving ``subject`` (an sre) over stdio."""

    def settings(subject: str) -> Settings:
        return backend.settings(
            kubeconfig=kube_settings.kubeconfig,
            kube_context=kube_settings.kube_context,
            opa_url=deleting_opa.url,
            subject=subject,
            groups=("sre",),
        )

    return settings


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings, backends=[open_backend])) as client:
        yield client


def _body(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result.content
    return result.structured_content


def _outcome(result: CallToolResult) -> str:
    body = result.structured_content or {}
    return str(body.get("outcome") or ("allow" if not result.is_error else "error"))


def _codes(result: CallToolResult) -> set[str]:
    return {r["code"] for r in (result.structured_content or {}).get("reasons", [])}


async def _delete(client: Client, namespace: str, i: int) -> CallToolResult:
    return await client.call_tool(
        "k8s_delete", {"kind": "ConfigMap", "namespace": namespace, "name": f"cache-{i}"}
    )


def _left(kube_admin: Any, namespace: str) -> set[str]:
    # Only ours: the controller manager adds kube-root-ca.crt to every namespace.
    items = k8s.CoreV1Api(kube_admin).list_namespaced_config_map(namespace).items
    return {c.metadata.name for c in items if c.metadata.name.startswith("cache-")}


async def test_a_delete_loop_is_parked_after_the_threshold_across_a_restart_and_for_its_principal_only(
    as_principal: Callable[[str], Settings], kube_admin: Any, namespace: str
) -> None:
    carol = as_principal("carol")
    async with _session(carol) as client:
        outcomes = [_outcome(await _delete(client, namespace, i)) for i in range(LOOP)]
        parked = await _delete(client, namespace, LOOP)
    # The default data: deletes_last_minute needs approval from 10 (refused from 50).
    assert outcomes == ["allow"] * 10 + ["needs_approval"] * (LOOP - 10)
    assert _left(kube_admin, namespace) == {f"cache-{i}" for i in range(10, LOOP + 2)}
    assert "OPS-RUNAWAY-001" in _codes(parked)
    reason = next(r for r in _body(parked)["reasons"] if r["code"] == "OPS-RUNAWAY-001")
    assert reason["message"].startswith(f"principal 'carol' made {LOOP} deletes in the last minute")

    # A new gateway process on the same database: the count is where it was.
    async with _session(carol) as client:
        again = await _delete(client, namespace, LOOP + 1)
    assert _outcome(again) == "needs_approval"
    assert "OPS-RUNAWAY-001" in _codes(again)
    assert f"made {LOOP + 1} deletes" in next(
        r["message"] for r in _body(again)["reasons"] if r["code"] == "OPS-RUNAWAY-001"
    )

    # Another principal on the same database and cluster is not held by carol's loop.
    async with _session(as_principal("dave")) as client:
        theirs = await _delete(client, namespace, 10)
    assert _outcome(theirs) == "allow", theirs.content
    assert "cache-10" not in _left(kube_admin, namespace)


async def test_unreadable_counts_refuse_changes_and_never_block_reads(
    as_principal: Callable[[str], Settings], kube_admin: Any, namespace: str, backend: Backend
) -> None:
    async with _session(as_principal("carol")) as client:
        assert _outcome(await _delete(client, namespace, 0)) == "allow"
        # The counts' table goes away under the running gateway (a damaged database).
        await backend.execute("DROP TABLE activity")
        refused = await _delete(client, namespace, 1)
        read = await client.call_tool(
            "k8s_get", {"kind": "ConfigMap", "namespace": namespace, "name": "cache-1"}
        )
        listed = await client.call_tool("k8s_list", {"kind": "ConfigMap", "namespace": namespace})
    assert _outcome(refused) == "deny"
    assert _codes(refused) == {"GW-HISTORY-UNAVAILABLE"}
    assert "recent activity could not be read" in _body(refused)["reasons"][0]["message"]
    assert "cache-1" in _left(kube_admin, namespace)
    assert not read.is_error, read.content
    assert _body(read)["metadata"]["name"] == "cache-1"
    assert not listed.is_error
