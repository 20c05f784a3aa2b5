"""The queue suites' real parts: purpose-built Rego policies served by a real OPA, and a
gateway whose one tool appends a line to a file, so executions can be counted across
processes.

Policies (``decision_path`` ``queuetest/<name>/decision``): every ``queuetest_append`` call
needs approval by ``sre`` members other than the requester, ``one`` (quorum 1), ``two``
(quorum 2); ``freeze`` denies everything (a change freeze declared after parking).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from http_support import serving_in_thread
from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Principal, Target
from gateway.http import build_app
from gateway.local.opa import OpaServer, build_bundle
from gateway.pipeline import Gateway
from gateway.policy import PolicyClient
from gateway.queue import Executor, QueueStore
from gateway.runtime import CheckFn, RuntimeSlot, ToolSource
from gateway.server import build_server
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec

if TYPE_CHECKING:  # queue_worker.py imports this module from tests/integration alone
    from storage_fixtures import Backend

TOOL = "queuetest_append"
ALICE = Principal(subject="alice", groups=("dev",), transport="stdio", authenticated=True)
BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
CAROL = Principal(subject="carol", groups=("sre",), transport="cli", authenticated=True)

_LIB = """package queuetest.lib

import rego.v1

needs_reason := {
\t"code": "TEST-APPROVAL",
\t"rule": "writes_need_approval",
\t"severity": "medium",
\t"effect": "needs_approval",
\t"message": "writes in production need approval by sre",
}

requirement(quorum) := {
\t"min_approvals": quorum,
\t"approver_groups": ["sre"],
\t"ttl_seconds": 900,
\t"allow_self_approval": false,
}

# Four-eyes and group membership are policy: the requester's own approval never counts.
counted contains a.subject if {
\tsome a in input.approvals
\ta.subject != input.principal.subject
\t"sre" in a.groups
}

decide(quorum) := {"outcome": "allow", "approval": requirement(quorum)} if count(counted) >= quorum

decide(quorum) := {
\t"outcome": "needs_approval",
\t"reasons": [needs_reason],
\t"approval": requirement(quorum),
} if count(counted) < quorum
"""

_POLICIES = {
    "one": "package queuetest.one\n\nimport data.queuetest.lib\n\ndecision := lib.decide(1)\n",
    "two": "package queuetest.two\n\nimport data.queuetest.lib\n\ndecision := lib.decide(2)\n",
    "freeze": """package queuetest.freeze

decision := {"outcome": "deny", "reasons": [{
\t"code": "TEST-FREEZE",
\t"rule": "change_freeze",
\t"severity": "high",
\t"effect": "deny",
\t"message": "change freeze: no writes in production",
}]}
""",
}


def start_test_opa(workdir: Path) -> OpaServer:
    """Write the test policies, build them with the real ``opa build`` and serve them."""
    rego = workdir / "rego"
    rego.mkdir(parents=True, exist_ok=True)
    (rego / "lib.rego").write_text(_LIB)
    for name, text in _POLICIES.items():
        (rego / f"{name}.rego").write_text(text)
    bundle = build_bundle(rego, workdir / "bundle.tar.gz", revision="queuetest-1")
    server = OpaServer(bundle, log_path=workdir / "opa.log")
    server.start()
    return server


@pytest.fixture(scope="module")
def queue_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    server = start_test_opa(tmp_path_factory.mktemp("queuetest-opa"))
    try:
        yield server
    finally:
        server.stop()


def settings_for(db: Backend, opa: OpaServer, policy: str, **extra: Any) -> Settings:
    """A gateway on ``db`` (either backend) judged by the test policy ``policy``."""
    return db.settings(
        opa_url=opa.url,
        decision_path=f"queuetest/{policy}/decision",
        opa_timeout_seconds=5.0,
        **extra,
    )


class AppendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: str = Field(min_length=1, max_length=100)
    sleep_seconds: float = Field(default=0.0, ge=0, le=60)


def append_tool(log: Path) -> ToolSpec[AppendArgs]:
    """A write tool whose execution appends ``line`` and this pid to ``log``: the
    executions count. It writes ``started`` first, so a test can kill it mid-way."""

    async def prepare(args: AppendArgs) -> list[Prepared]:
        target = Target(
            cluster="sandbox", namespace="payments", kind="ConfigMap", name="log", environment="production"
        )
        return [Prepared(target=target, object={"data": {"line": args.line}}, current=None)]

    async def execute(args: AppendArgs, ctx: ExecutionContext) -> dict[str, Any]:
        await asyncio.to_thread(_append, log, f"started {args.line} {os.getpid()}\n")
        await asyncio.sleep(args.sleep_seconds)
        await asyncio.to_thread(_append, log, f"done {args.line} {os.getpid()}\n")
        return {"appended": args.line, "action": ctx.call.id}

    return ToolSpec(
        name=TOOL,
        title="Append a line (test)",
        description="Appends a line to a file; the queue suites count executions with it.",
        backend="kubernetes",
        operation="append",
        effect="write",
        args=AppendArgs,
        prepare=prepare,
        execute=execute,
    )


def _append(log: Path, text: str) -> None:
    with log.open("a", encoding="utf-8") as handle:
        handle.write(text)


def executions(log: Path) -> list[str]:
    """The ``done`` lines: completed executions."""
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.startswith("done ")]


def started(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.startswith("started ")]


@dataclass
class Stack:
    """A gateway over a real store, real OPA and the append tool; its executor."""

    settings: Settings
    store: QueueStore
    policy: PolicyClient
    gateway: Gateway
    executor: Executor


@contextlib.asynccontextmanager
async def gateway_stack(
    settings: Settings, log: Path, *, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[Stack]:
    registry = ToolRegistry()
    registry.register(append_tool(log))
    store = await (
        QueueStore.from_settings(settings, clock=clock) if clock else QueueStore.from_settings(settings)
    )
    try:
        async with PolicyClient(settings) as policy:
            gateway = Gateway(settings, registry, policy, store, store.audit)
            yield Stack(
                settings, store, policy, gateway, Executor(store, gateway, store.audit, policy=policy)
            )
    finally:
        await store.close()


def cli_env(
    db: Backend, opa: OpaServer, policy: str, subject: str, groups: tuple[str, ...] = ("sre",)
) -> dict[str, str]:
    """Environment for a ``gateway`` CLI process acting as ``subject``."""
    return {
        **db.environ(),
        "GATEWAY_OPA_URL": opa.url,
        "GATEWAY_DECISION_PATH": f"queuetest/{policy}/decision",
        "GATEWAY_OPA_TIMEOUT_SECONDS": "5",
        "GATEWAY_SUBJECT": subject,
        "GATEWAY_GROUPS": json.dumps(list(groups)),
    }


def append_source(log: Path) -> ToolSource:
    """The append tool as a gateway backend (``build_server(backends=[...])``)."""

    @contextlib.asynccontextmanager
    async def source(settings: Settings, check: CheckFn) -> AsyncIterator[list[ToolSpec[Any]]]:
        yield [append_tool(log)]

    return source


@dataclass
class ApiGateway:
    """A real gateway serving MCP and the approvals API over HTTP, in a thread."""

    url: str
    settings: Settings


@contextlib.contextmanager
def api_gateway(settings: Settings, log: Path) -> Iterator[ApiGateway]:
    """``gateway serve --transport http`` as the CLI sees it: ``settings`` must name a
    tokens file; the executor runs approved append calls into ``log``."""
    slot = RuntimeSlot()
    server = build_server(settings, backends=[append_source(log)], slot=slot)
    with serving_in_thread(build_app(server, settings, slot=slot)) as url:
        yield ApiGateway(url=url, settings=settings)


def api_env(url: str, token: str, **extra: str) -> dict[str, str]:
    """Environment for a ``gateway queue`` client process using the approvals API."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**base, "GATEWAY_URL": url, "GATEWAY_TOKEN": token, **extra}
