"""Several gateway replicas on one PostgreSQL database, as native processes, and a
round-robin HTTP load balancer in front of them (no session affinity): the several-replicas
suite's parts.

Each replica is ``replica_worker.py``: the real HTTP front end (bearer tokens, MCP at
``/mcp``, the approvals API, ``/readyz``) and the real runtime (queue store, executor),
with the append tool as its backend. The replicas share the tokens file, the queue keys and
the attestation key, as a Deployment's pods share a Secret.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from storage_fixtures import Backend

from gateway.auth import append_token
from gateway.local.opa import OpaServer
from gateway.local.process import answers_200, free_port, wait_until
from gateway.queue.proofs import Attestor
from gateway.queue.sealing import Sealer

WORKER = Path(__file__).with_name("replica_worker.py")


@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: the replica dies with whatever it was doing, as a node failure does."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Replicas:
    """N replicas on ``db``, judged by the test policy ``policy`` of ``opa``."""

    db: Backend
    opa: OpaServer
    workdir: Path
    policy: str = "one"
    lease_seconds: float = 3.0
    stateless: bool = True
    members: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.executions = self.workdir / "executions.log"
        self.tokens_file = self.workdir / "tokens.jsonl"
        self.tokens = {
            "alice": append_token(self.tokens_file, subject="alice", groups=("dev",)),
            "bob": append_token(self.tokens_file, subject="bob", groups=("sre",)),
            "carol": append_token(self.tokens_file, subject="carol", groups=("sre",)),
        }
        # The keys every replica shares, made once (a Secret in the Helm chart).
        settings = self.db.settings()
        Sealer.from_settings(settings, create=True)
        Attestor.load_or_create(self.workdir / "attestation.key")

    def env(self, name: str) -> dict[str, str]:
        return self.db.environ(
            GATEWAY_INSTANCE=name,
            GATEWAY_EXECUTION_LEASE_SECONDS=str(self.lease_seconds),
            GATEWAY_TOKENS_FILE=str(self.tokens_file),
            GATEWAY_STATELESS_HTTP="true" if self.stateless else "false",
        )

    def start(self, count: int, timeout: float = 60.0) -> list[Replica]:
        started = []
        for _ in range(count):
            name, port = f"replica-{len(self.members) + 1}", free_port()
            log = self.workdir / f"{name}.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, str(WORKER), self.opa.url, self.policy, str(self.executions), str(port)],
                    env=self.env(name), cwd=WORKER.parent, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            replica = Replica(name, port, proc, log)
            self.members.append(replica)
            started.append(replica)
        for replica in started:
            wait_until(lambda r=replica: self._ready(r), timeout=timeout, what=replica.name)
        return started

    @staticmethod
    def _ready(replica: Replica) -> bool:
        if replica.proc.poll() is not None:
            raise RuntimeError(f"{replica.name} exited:\n{replica.log.read_text()[-3000:]}")
        return answers_200(f"{replica.url}/readyz")

    def stop(self) -> None:
        for replica in self.members:
            replica.stop()

    def api(self, replica: Replica, who: str) -> httpx.Client:
        """The approvals API of ``replica`` as ``who``."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=replica.url, headers=headers, timeout=30, trust_env=False)

    def started(self) -> list[str]:
        """``started LINE PID`` lines: executions begun (``done`` once they finish)."""
        return _lines(self.executions, "started ")

    def done(self) -> list[str]:
        return _lines(self.executions, "done ")


def _lines(log: Path, prefix: str) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.startswith(prefix)]


@contextlib.contextmanager
def replicas(db: Backend, opa: OpaServer, workdir: Path, **options: Any) -> Iterator[Replicas]:
    group = Replicas(db, opa, workdir, **options)
    try:
        yield group
    finally:
        group.stop()


def wait_for(probe: Any, *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``probe`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


@contextlib.asynccontextmanager
async def legacy_client(url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client that speaks the pre-2026 protocol: an ``initialize`` handshake, then an
    ``Mcp-Session-Id`` on every request (what most MCP clients in use send). The 2026
    protocol has no session, so any replica answers any request of it."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client,
    ):
        yield client


def round_robin(upstreams: list[str]) -> Starlette:
    """An HTTP load balancer without session affinity: each request (and so each MCP
    message) goes to the next upstream; responses, event streams included, are streamed
    back as they come. ``balancer.state.hits`` counts requests per upstream."""
    turn = itertools.cycle(range(len(upstreams)))
    hits = [0] * len(upstreams)
    client = httpx.AsyncClient(timeout=httpx.Timeout(60, read=120), trust_env=False)

    async def forward(request: Request) -> Response:
        index = next(turn)
        hits[index] += 1
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}]
        upstream = client.build_request(
            request.method,
            upstreams[index] + request.url.path,
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        try:
            answer = await client.send(upstream, stream=True)
        except httpx.TransportError:
            return Response("upstream unavailable", status_code=502)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            except httpx.TransportError:
                return  # the replica went away mid-stream: the client sees the stream end
            finally:
                await answer.aclose()

        passed = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in {"content-length", "transfer-encoding"}
        }
        return StreamingResponse(body(), status_code=answer.status_code, headers=passed)

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])
    app.state.hits = hits
    return app
