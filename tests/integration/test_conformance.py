"""MCP conformance: ``@modelcontextprotocol/conformance`` (pinned in mk/deploy.mk) runs its
server scenarios against ``gateway serve --transport http`` with the real OPA and the fake
Palette API (so ``tools-list`` covers real tool schemas). Every check of every scenario
that applies must succeed; a scenario for a capability the server does not offer is
skipped with that reason.

The tool cannot send a bearer token, so this gateway runs with ``GATEWAY_ANONYMOUS=read-only``:
the protocol surface is the same, and policy limits the anonymous principal to reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.local.fake_palette import FakePaletteServer
from gateway.local.opa import OpaServer
from gateway.local.process import ManagedProcess, answers_200, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_BIN = ROOT / ".cache" / "conformance" / "node_modules" / ".bin" / "conformance"

# Scenario -> the server capability it needs (None: every server).
SCENARIOS: dict[str, str | None] = {
    "server-initialize": None,
    "ping": None,
    "tools-list": "tools",
    "dns-rebinding-protection": None,
    "logging-set-level": "logging",
    "resources-list": "resources",
    "prompts-list": "prompts",
}


def _conformance_bin() -> str:
    path = os.environ.get("GATEWAY_CONFORMANCE_BIN") or str(_DEFAULT_BIN)
    if not os.access(path, os.X_OK):
        pytest.fail(f"conformance tool not installed at {path}: run `make conformance-tool`")
    return path


class _Served:
    def __init__(self, url: str, capabilities: dict[str, Any]) -> None:
        self.url = url
        self.capabilities = capabilities


def _initialize(url: str) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "conformance-probe", "version": "1"},
        },
    }
    resp = httpx.post(url, json=body, headers={"Accept": "application/json, text/event-stream"}, timeout=10)
    resp.raise_for_status()
    data = next(line[5:] for line in resp.text.splitlines() if line.startswith("data:"))
    result: dict[str, Any] = json.loads(data)["result"]
    return result


@pytest.fixture(scope="module")
def served(opa_server: OpaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    state = tmp_path_factory.mktemp("conformance")
    palette = FakePaletteServer(api_key="conformance-key", log_path=state / "palette.log")
    palette.start()
    port = free_port()
    env = {
        "GATEWAY_OPA_URL": opa_server.url,
        "GATEWAY_DB_PATH": str(state / "gateway.db"),
        "GATEWAY_ANONYMOUS": "read-only",
        "HOME": str(state),  # no ~/.kube/config of the developer's
        **palette.environment(),
    }
    gateway = ManagedProcess(
        [sys.executable, "-m", "gateway", "serve", "--transport", "http", "--port", str(port)],
        log_path=state / "gateway.log",
        env=env,
    )
    try:
        gateway.start_and_wait(
            lambda: answers_200(f"http://127.0.0.1:{port}/readyz"),
            timeout=60,
            what="gateway serve --transport http",
        )
        url = f"http://127.0.0.1:{port}/mcp"
        yield _Served(url, _initialize(url)["capabilities"])
    finally:
        gateway.stop()
        palette.stop()


def _run(served: _Served, scenario: str, out: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """One scenario; its exit code and the checks it wrote to ``out``."""
    done = subprocess.run(
        [_conformance_bin(), "server", "--url", served.url, "--scenario", scenario, "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    files = list(out.glob("*/checks.json"))
    assert len(files) == 1, f"no checks written:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done, json.loads(files[0].read_text())


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_conformance_scenario_passes(served: _Served, scenario: str, tmp_path: Path) -> None:
    needs = SCENARIOS[scenario]
    if needs is not None and needs not in served.capabilities:
        pytest.skip(f"the server does not offer the {needs!r} capability")
    done, checks = _run(served, scenario, tmp_path)
    report = "\n".join([done.stdout[-3000:], done.stderr[-3000:]])
    assert checks, report
    failed = [
        f"{c['id']}: {c['status']} {c.get('errorMessage', '')}" for c in checks if c["status"] != "SUCCESS"
    ]
    assert failed == [], report
    assert done.returncode == 0, report


def test_the_tool_reports_a_failing_scenario(served: _Served, tmp_path: Path) -> None:
    """The harness can fail: a scenario for a capability the gateway lacks does fail."""
    if "logging" in served.capabilities:
        pytest.skip("the server offers logging; no scenario is known to fail")
    done, checks = _run(served, "logging-set-level", tmp_path)
    assert done.returncode != 0
    assert any(c["status"] == "FAILURE" for c in checks)
