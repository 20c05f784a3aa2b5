"""A scripted agent session against a running topology (``make run``'s processes), for the
observability checks and the dashboard screenshot: every kind of call an operator's
dashboard should show, through the real MCP client over HTTP and the real CLI.

One ``round`` makes, as ``carol`` (developers), ``dave`` (viewers) and ``alice``
(payments): allowed reads of the sandbox cluster and of Palette, a privileged Pod denied by
policy, arguments the gateway rejects, and two production writes parked for approval, of which the demo
approver ``bob`` approves one (signed, through the API; the gateway then runs it) and
denies the other. ``approve=False`` leaves both waiting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.auth import append_token
from gateway.local.topology import Topology

__all__ = ["PRIVILEGED_POD", "Agents", "RoundReport", "agent_client", "run_round"]

PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: debug-shell, namespace: dev}
spec:
  containers:
  - name: shell
    image: nginx:latest
    securityContext: {privileged: true}
"""


@dataclass
class Agents:
    """Bearer tokens of the session's callers, added to the topology's tokens file once."""

    tokens: dict[str, str]

    @classmethod
    def create(cls, topology: Topology) -> Agents:
        groups = {"alice": ("payments",), "carol": ("developers",), "dave": ("viewers",)}
        return cls(
            {name: append_token(topology.tokens_file, subject=name, groups=g) for name, g in groups.items()}
        )


@dataclass
class RoundReport:
    """What one round saw: replies by kind, and the parked actions' ids."""

    outcomes: Counter[str] = field(default_factory=Counter)
    parked: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)


@asynccontextmanager
async def agent_client(topology: Topology, token: str) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP to the topology's gateway, with a bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http,
        Client(streamable_http_client(topology.mcp_url, http_client=http)) as client,
    ):
        yield client


async def run_round(
    topology: Topology, agents: Agents, *, index: int = 0, approve: bool = True
) -> RoundReport:
    """One round of the session (see the module docstring)."""
    report = RoundReport()
    async with agent_client(topology, agents.tokens["carol"]) as carol:
        for call in (
            ("k8s_get", {"kind": "Deployment", "namespace": "dev", "name": "web"}),
            ("k8s_list", {"kind": "Pod", "namespace": "dev"}),
            ("k8s_apply", {"manifest": PRIVILEGED_POD}),
            ("k8s_get", {"kind": "deploymnt", "namespace": "dev", "name": "web"}),
            ("k8s_scale", {"kind": "Deployment", "namespace": "dev", "name": "web", "replicas": -1}),
        ):
            result = await carol.call_tool(*call)
            report.outcomes[_kind(result)] += 1
    async with agent_client(topology, agents.tokens["dave"]) as dave:
        report.outcomes[_kind(await dave.call_tool("palette_list_clusters", {}))] += 1
    async with agent_client(topology, agents.tokens["alice"]) as alice:
        for replicas in (3 + index % 3, 2):
            result = await alice.call_tool(
                "k8s_scale",
                {"kind": "Deployment", "namespace": "payments", "name": "api", "replicas": replicas},
            )
            report.outcomes[_kind(result)] += 1
            body = result.structured_content or {}
            if body.get("outcome") == "needs_approval":
                report.parked.append(str(body["action_id"]))
    if approve and len(report.parked) == 2:
        approve_id, deny_id = report.parked
        await _queue(topology, "approve", approve_id, "--reason", "reviewed in the ops session")
        report.approved.append(approve_id)
        await _queue(topology, "deny", deny_id, "--reason", "not now")
        report.denied.append(deny_id)
    return report


def _kind(result: Any) -> str:
    body = result.structured_content or {}
    if not result.is_error:
        return str(body.get("outcome") or "allow")
    return str(body.get("outcome") or "error")


async def _queue(topology: Topology, *args: str) -> None:
    """``gateway queue …`` as the demo approver, with what the topology's summary exports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | topology.cli_environment()

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "queue", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    done = await anyio.to_thread.run_sync(run)
    if done.returncode != 0:
        raise RuntimeError(f"gateway queue {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
