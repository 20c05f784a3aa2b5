"""End to end over HTTP: the ``make up`` topology (OPA with the bundle, a seeded sandbox
kube-apiserver, the fake Palette API, ``gateway serve --transport http`` with bearer
tokens), driven by a real MCP client: allow, deny, park, approve from the CLI, execution.

The topology runs on free ports (other suites may hold 8000/8181) with the session's
bundle; everything else is what ``make up`` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from http_support import mcp_client
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import append_token
from gateway.local.deployment import GATEWAY_PORT
from gateway.local.ops_session import PRIVILEGED_POD
from gateway.local.process import free_port
from gateway.local.topology import Topology, TopologyConfig
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

ROOT = Path(__file__).resolve().parents[2]

COMPLIANT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: payments, labels: {app: checkout}}
spec:
  replicas: 2
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
      - name: checkout
        image: registry.example.com/payments/checkout:1.0.0
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 200m, memory: 256Mi}
"""


class Running:
    def __init__(self, topology: Topology, tokens: dict[str, str]) -> None:
        self.topology = topology
        self.tokens = tokens

    def cli(self, *args: str, subject: str) -> subprocess.CompletedProcess[str]:
        """``gateway queue ...`` as an approver at the terminal, with exactly what the
        topology's summary tells them to export (the ports here are not the defaults): bob
        is ``make run``'s demo approver (token file and SSH key in <state>/demo); others use
        their token."""
        demo = self.topology.demo
        assert demo is not None
        summary = self.topology.summary().splitlines()
        exports = [line.split("export ", 1)[1] for line in summary if "export " in line]
        assert len(exports) == 1, self.topology.summary()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env |= dict(item.split("=", 1) for item in shlex.split(exports[0]))
        if subject != demo.subject:
            env = {k: v for k, v in env.items() if k not in ("GATEWAY_TOKEN_FILE", "GATEWAY_SIGNING_KEY")}
            env["GATEWAY_TOKEN"] = self.tokens[subject]
        return subprocess.run(
            [sys.executable, "-m", "gateway", "queue", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


@pytest.fixture(scope="module")
def running(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("topology")
    config = TopologyConfig(
        root=ROOT,
        state_dir=state,
        opa_port=free_port(),
        gateway_port=free_port(),
        bundle=bundle_path,
    )
    topology = Topology(config)
    topology.start(timeout=120)
    try:
        tokens = {
            "alice": append_token(topology.tokens_file, subject="alice", groups=("payments",)),
            "carol": append_token(topology.tokens_file, subject="carol", groups=("developers",)),
        }
        yield Running(topology, tokens)
    finally:
        topology.stop()


def test_topology_uses_the_compose_settings_on_its_own_ports(running: Running) -> None:
    env = running.topology.gateway_env()
    assert env["GATEWAY_TRANSPORT"] == "http"
    assert env["GATEWAY_ANONYMOUS"] == "reject"
    assert env["GATEWAY_OPA_URL"] == running.topology.opa.url
    # Only the port differs from `make up`, which uses the default.
    assert TopologyConfig().gateway_port == GATEWAY_PORT
    assert httpx.get(f"{running.topology.opa.url}/health?bundles", timeout=5).status_code == 200
    ready = httpx.get(f"{running.topology.gateway_url}/readyz", timeout=5)
    assert ready.json() == {"status": "ready", "checks": {"opa": "ok", "database": "ok"}}


def test_the_container_healthcheck_passes_against_the_native_gateway(running: Running) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["gateway"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    port = running.topology.config.gateway_port
    argv = [sys.executable, *(arg.replace(f":{GATEWAY_PORT}/", f":{port}/") for arg in test[2:])]
    assert subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode == 0


async def test_a_request_without_a_token_is_refused(running: Running) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(running.topology.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_an_allowed_read_returns_the_object(running: Running) -> None:
    async with mcp_client(running.topology.gateway_url, running.tokens["carol"]) as client:
        result = await client.call_tool("k8s_get", {"kind": "Deployment", "namespace": "dev", "name": "web"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["metadata"]["name"] == "web"


async def test_a_denied_write_returns_the_reasons_and_changes_nothing(running: Running) -> None:
    async with mcp_client(running.topology.gateway_url, running.tokens["carol"]) as client:
        denied = await client.call_tool("k8s_apply", {"manifest": PRIVILEGED_POD})
        after = await client.call_tool("k8s_get", {"kind": "Pod", "namespace": "dev", "name": "debug-shell"})
    assert denied.is_error
    assert denied.structured_content is not None
    assert denied.structured_content["outcome"] == "deny"
    codes = {r["code"] for r in denied.structured_content["reasons"]}
    assert "K8S-PRIV-001" in codes
    assert after.is_error  # never created
    # OPA's console decision log (deploy/opa/config.yaml) recorded the decision.
    log = (running.topology.config.state / "logs" / "opa.log").read_text()
    assert '"msg":"Decision Log"' in log


async def _state_of(client: Any, action_id: str, until: set[str]) -> dict[str, Any]:
    """Poll ``gateway_action`` until the action is in one of ``until`` (30 s at most)."""
    body: dict[str, Any] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while body.get("state") not in until:
                result = await client.call_tool("gateway_action", {"action_id": action_id})
                body = result.structured_content or {}
                if body.get("state") not in until:
                    await asyncio.sleep(0.2)
    return body


async def test_a_production_write_parks_is_approved_from_the_cli_and_runs_once(running: Running) -> None:
    async with mcp_client(running.topology.gateway_url, running.tokens["alice"]) as client:
        parked = await client.call_tool("k8s_apply", {"manifest": COMPLIANT})
        assert not parked.is_error, parked.content
        body = parked.structured_content or {}
        assert body["outcome"] == "needs_approval", body
        action_id = body["action_id"]
        assert (await _state_of(client, action_id, {"pending"}))["state"] == "pending"
        checkout = {"kind": "Deployment", "namespace": "payments", "name": "checkout"}
        missing = await client.call_tool("k8s_get", checkout)
        assert missing.is_error  # parked means not run

        # The requester recorded is the bearer token's principal, over HTTP.
        listed = running.cli("list", "--state", "pending", "--json", subject="bob")
        assert listed.returncode == 0, listed.stderr
        assert action_id in listed.stdout
        assert "alice" in listed.stdout

        # Four eyes: alice may not approve her own production write.
        own = running.cli("approve", action_id, "--reason", "mine", subject="alice")
        assert own.returncode != 0
        # make run requires signed approvals: bob signs with his demo key through the API.
        approved = running.cli("approve", action_id, "--reason", "reviewed", "--json", subject="bob")
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert json.loads(approved.stdout)["signed"] is True

        done = await _state_of(client, action_id, {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        created = await client.call_tool("k8s_get", checkout)
        assert not created.is_error, created.content
        again = running.cli("approve", action_id, "--reason", "twice", subject="bob")
        assert again.returncode != 0  # it ran once; nothing left to approve

    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{running.topology.gateway_url}/metrics", timeout=5)).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    apply_parked = ("gateway_tool_calls_total", (("outcome", "needs_approval"), ("tool", "k8s_apply")))
    assert samples[apply_parked] >= 1
    assert samples[("gateway_queue_actions", (("state", "succeeded"),))] >= 1
    assert samples[("gateway_decision_seconds_count", ())] >= 1


def test_a_configured_cluster_and_palette_replace_the_sandbox_and_the_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_KUBECONFIG", str(tmp_path / "prod-kubeconfig"))
    monkeypatch.setenv("GATEWAY_KUBE_CONTEXT", "prod")
    monkeypatch.setenv("PALETTE_HOST", "https://api.spectrocloud.com")
    config = TopologyConfig.from_settings(Settings(), root=ROOT, state_dir=tmp_path)
    topology = Topology(config)  # nothing is started by construction
    assert topology.kube is None
    assert topology.palette is None
    env = topology.gateway_env()
    # The gateway inherits the configured backends from the environment, untouched.
    assert "GATEWAY_KUBECONFIG" not in env
    assert "PALETTE_HOST" not in env
    assert env["GATEWAY_DB_PATH"] == str(tmp_path.resolve() / "gateway.db")
    assert env["GATEWAY_TOKENS_FILE"] == str(tmp_path.resolve() / "tokens.jsonl")
