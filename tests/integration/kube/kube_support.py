"""Drive the Kubernetes ToolSpecs the way ``gateway.pipeline`` does, without OPA: validate
the arguments, ``prepare`` into proposed actions, then ``execute`` with a decision. And the
whole gateway over them (``connected``: an MCP client of a gateway with the project's
policy), with a human approving from the side (``approve_and_wait``, shared in ``mcp_support``)."""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from mcp import Client
from mcp_support import approve_and_wait as approve_and_wait
from mcp_support import reply_body as reply_body
from mcp_support import reply_text as reply_text

from gateway.contracts import Decision, Obligations, PlannedCall, Principal
from gateway.kubernetes.tools import open_backend
from gateway.server import build_server
from gateway.settings import Settings
from gateway.tools import ExecutionContext, ToolSpec

T = TypeVar("T")
ALLOW = Decision(outcome="allow")
TESTER = Principal(subject="tester", transport="internal", authenticated=True)


def allow_with(*, max_log_lines: int | None = None) -> Decision:
    return Decision(outcome="allow", obligations=Obligations(max_log_lines=max_log_lines))


class ToolRunner:
    def __init__(self, specs: list[ToolSpec[Any]]) -> None:
        self.specs = {spec.name: spec for spec in specs}

    async def plan(self, tool: str, **arguments: Any) -> PlannedCall:
        spec = self.specs[tool]
        args = spec.args.model_validate(arguments)
        return spec.plan(args, await spec.prepare(args), TESTER)

    async def execute(self, call: PlannedCall, decision: Decision = ALLOW) -> Any:
        spec = self.specs[call.tool]
        args = spec.args.model_validate(call.call_args)
        return await spec.execute(args, ExecutionContext(call=call, decision=decision))

    async def call(self, tool: str, *, decision: Decision = ALLOW, **arguments: Any) -> Any:
        return await self.execute(await self.plan(tool, **arguments), decision)


async def eventually(check: Callable[[], Awaitable[T | None]], *, what: str, within: float = 90.0) -> T:
    """Poll ``check`` until it returns something: a state the controllers or kwok reach in
    their own time. Not a timing assertion: the bound only keeps a broken run from hanging."""
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        assert time.monotonic() < deadline, f"never happened within {within:.0f}s: {what}"
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Endpoint:
    """Where one kubeconfig context points, and as whom."""

    server: str
    ca_file: Path
    token: str


def write_kubeconfig(path: Path, contexts: Mapping[str, Endpoint], *, current: str) -> Path:
    """One kubeconfig with a cluster and a user of its own per context (owner-only: it holds
    tokens)."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": f"{name}-cluster", "cluster": {
                "server": e.server,
                "certificate-authority-data": base64.b64encode(e.ca_file.read_bytes()).decode("ascii"),
            }}
            for name, e in contexts.items()
        ],
        "users": [{"name": f"{name}-user", "user": {"token": e.token}} for name, e in contexts.items()],
        "contexts": [
            {"name": name, "context": {"cluster": f"{name}-cluster", "user": f"{name}-user"}}
            for name in contexts
        ],
        "current-context": current,
    }  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(document, out, sort_keys=False)
    return path


def kube_source(settings: Settings, policy: Any) -> Any:
    """The Kubernetes backend as the gateway opens it (``gateway.runtime.ToolSource``)."""
    return open_backend(settings, policy)


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[Client]:
    """An MCP client of a gateway serving the Kubernetes tools. Entered inside each test:
    the client's task group must open and close in one task."""
    async with Client(build_server(settings, backends=[kube_source])) as client:
        yield client


_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what the server sets (status, identity, versions, the annotations
    controllers keep, a Service's allocated IPs): what two states of a cluster compare on."""
    out = copy.deepcopy({k: v for k, v in obj.items() if k != "status"})
    meta = out.get("metadata") or {}
    for key in _SERVER_SET:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    if not annotations:
        meta.pop("annotations", None)
    if out.get("kind") == "Service":
        for key in ("clusterIP", "clusterIPs"):
            out.get("spec", {}).pop(key, None)
    return out
