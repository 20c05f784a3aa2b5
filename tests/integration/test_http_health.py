"""``/healthz``, ``/readyz`` and ``/metrics`` over a real socket, against the real OPA."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from http_support import mcp_client, serving, whoami_server
from prometheus_client.parser import text_string_to_metric_families
from queue_support import ALICE, needs_approval, scale_call

from gateway.auth import append_token
from gateway.http import build_app
from gateway.local.opa import OpaServer, find_opa
from gateway.local.process import ManagedProcess, free_port, wait_until
from gateway.metrics import Metrics
from gateway.queue import QueueStore
from gateway.settings import Settings

pytestmark = pytest.mark.integration


def _database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    return path


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _settings(tmp_path: Path, opa_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "tokens_file": tmp_path / "tokens.jsonl",
        "db_path": _database(tmp_path / "gateway.db"),
        "opa_url": opa_url,
    }
    values.update(overrides)
    append_token(tmp_path / "tokens.jsonl", subject="alice", groups=("sre",))
    return Settings.model_validate(values)


async def test_healthz_answers_without_a_token(tmp_path: Path, opa_server: OpaServer) -> None:
    settings = _settings(tmp_path, opa_server.url)
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_ready_when_opa_has_its_bundle_and_the_database_is_writable(
    tmp_path: Path, opa_server: OpaServer
) -> None:
    settings = _settings(tmp_path, opa_server.url)
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "checks": {"opa": "ok", "database": "ok"}}


async def test_not_ready_when_opa_is_unreachable(tmp_path: Path) -> None:
    settings = _settings(tmp_path, f"http://127.0.0.1:{free_port()}")
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"] == {"opa": "unreachable", "database": "ok"}
    assert "127.0.0.1" not in resp.text  # no addresses or paths leave through a public endpoint


async def test_not_ready_while_opa_has_no_active_bundle(tmp_path: Path) -> None:
    # OPA told to expect a bundle from a service that does not answer: up, but not ready.
    bundle_service = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "opa.yaml"
    config.write_text(
        f"services:\n  s:\n    url: {bundle_service}\n"
        "bundles:\n  gateway:\n    service: s\n    resource: b.tar.gz\n"
    )
    port = free_port()
    process = ManagedProcess(
        [find_opa(), "run", "--server", f"--addr=127.0.0.1:{port}", f"--config-file={config}"],
        log_path=tmp_path / "opa.log",
    )
    process.start()
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/health"), timeout=30, what="opa")
        settings = _settings(tmp_path, f"http://127.0.0.1:{port}")
        async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
            resp = await http.get(f"{url}/readyz")
    finally:
        process.stop()
    assert resp.status_code == 503
    assert resp.json()["checks"]["opa"] == "bundle not active"


@pytest.mark.parametrize("problem", ["missing", "locked"])
async def test_not_ready_when_the_database_cannot_be_written(
    tmp_path: Path, opa_server: OpaServer, problem: str
) -> None:
    settings = _settings(tmp_path, opa_server.url)
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/readyz")).status_code == 200
        if problem == "missing":
            settings.db_path.rename(tmp_path / "moved.db")
            resp = await http.get(f"{url}/readyz")
        else:
            # Another writer holding the lock longer than a probe waits looks the same.
            holder = sqlite3.connect(settings.db_path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                resp = await http.get(f"{url}/readyz")
            finally:
                holder.close()
    assert resp.status_code == 503
    assert resp.json()["checks"] == {"opa": "ok", "database": "not writable"}
    assert str(tmp_path) not in resp.text


def _families(text: str) -> dict[str, list[tuple[Mapping[str, str], float]]]:
    out: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


async def test_metrics_are_prometheus_text_with_queue_depth_and_no_secrets(
    tmp_path: Path, opa_server: OpaServer
) -> None:
    settings = _settings(tmp_path, opa_server.url)
    token = append_token(settings.tokens_file, subject="mallory-secret-subject", groups=())  # type: ignore[arg-type]
    metrics = Metrics()
    metrics.record_call("k8s_delete", "needs_approval")

    async def depth() -> Mapping[str, int]:
        return {"pending": 2, "approved": 1}

    app = build_app(whoami_server(settings), settings, metrics=metrics, queue_depth=depth)
    async with serving(app) as url, httpx.AsyncClient() as http:
        async with mcp_client(url, token) as client:
            await client.call_tool("whoami", {})
        await http.post(f"{url}/mcp", json={}, headers={"Authorization": "Bearer pgw_wrong-token"})
        resp = await http.get(f"{url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    samples = _families(resp.text)
    assert ({"tool": "k8s_delete", "outcome": "needs_approval"}, 1.0) in samples["gateway_tool_calls_total"]
    assert ({"state": "pending"}, 2.0) in samples["gateway_queue_actions"]
    assert ({"state": "executing"}, 0.0) in samples["gateway_queue_actions"]
    assert samples["gateway_queue_up"] == [({}, 1.0)]
    assert ({"reason": "invalid_token"}, 1.0) in samples["gateway_auth_failures_total"]
    assert "gateway_decision_seconds_bucket" in samples
    assert "gateway_opa_errors_total" in samples
    for leak in (token, "pgw_wrong-token", "mallory-secret-subject", str(tmp_path)):
        assert leak not in resp.text


async def test_metrics_still_answer_when_the_queue_cannot_be_read(
    tmp_path: Path, opa_server: OpaServer
) -> None:
    settings = _settings(tmp_path, opa_server.url)

    async def broken() -> Mapping[str, int]:
        raise sqlite3.OperationalError("disk I/O error at /secret/path")

    app = build_app(whoami_server(settings), settings, metrics=Metrics(), queue_depth=broken)
    async with serving(app) as url, httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/metrics")
    assert resp.status_code == 200
    assert _families(resp.text)["gateway_queue_up"] == [({}, 0.0)]
    assert "/secret/path" not in resp.text


async def test_metrics_read_the_queue_depth_from_the_gateway_database(
    tmp_path: Path, opa_server: OpaServer
) -> None:
    settings = _settings(tmp_path, opa_server.url)
    store = await QueueStore.open(settings.db_path)
    try:
        await store.park(scale_call(replicas=3), needs_approval(), ALICE)
        await store.park(scale_call(replicas=4), needs_approval(), ALICE)
    finally:
        await store.close()
    app = build_app(whoami_server(settings), settings, metrics=Metrics())
    async with serving(app) as url, httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/metrics")
    samples = _families(resp.text)
    assert ({"state": "pending"}, 2.0) in samples["gateway_queue_actions"]
    assert ({"state": "approved"}, 0.0) in samples["gateway_queue_actions"]
    assert samples["gateway_queue_up"] == [({}, 1.0)]
