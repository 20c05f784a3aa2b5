"""Benchmark: the HTTP transport (streamable HTTP + bearer token + host guard) against the
same server reached in memory.

Starts a real OPA with the project bundle and the fake Palette API, then measures one
``tools/call`` — ``gateway_check`` of ``palette_list_clusters``: admission, planning, one
OPA decision, an audit record — and one ``ping`` (the protocol floor):

- ``in-memory``: ``Client(build_server(settings))`` in this process, no HTTP at all;
- ``http``: ``gateway serve --transport http`` as its own process, reached by
  ``mcp.Client`` over loopback with ``Authorization: Bearer``.

at concurrency 1 and 8 on one session, printing p50, p99, calls/s and what HTTP adds.
Targets on a quiet 2-core machine: HTTP adds <= 5 ms at p50 to a tools/call at
concurrency 1, and the gateway serves >= 100 tools/call per second over HTTP at
concurrency 8 (a plain Python MCP server's published figure is about 430 calls/s for a
no-op tool; each call here also asks OPA and writes an audit record). Most of what HTTP
adds is the SDK's streamable HTTP itself (an SSE response per request); the bearer-token
check and the host guard are a hash and two header comparisons.

    .venv/bin/python -m bench.http_transport [--calls 1000] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.auth import append_token
from gateway.local.fake_palette import FakePaletteServer
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.process import ManagedProcess, answers_200, free_port
from gateway.server import build_server
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CHECK = {"tool": "palette_list_clusters", "arguments": {}}

Call = Callable[[], Awaitable[Any]]


async def _latencies(call: Call, calls: int, concurrency: int) -> tuple[list[float], float]:
    samples: list[float] = []

    async def worker() -> None:
        for _ in range(calls // concurrency):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def _summary(samples: list[float], wall: float) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        len(ordered) / wall,
    )


@contextlib.asynccontextmanager
async def _http_client(url: str, token: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


async def _bench(memory: Client, http: Client, calls: int) -> int:
    for name, client in (("in-memory", memory), ("http", http)):
        result = await client.call_tool("gateway_check", CHECK)
        body = result.structured_content or {}
        if result.is_error or body.get("outcome") != "allow":
            print(
                f"{name}: gateway_check did not allow ({body}); figures would be meaningless", file=sys.stderr
            )
            return 1
    print(f"  {'':22} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>8}")
    for label, make in (
        ("ping", lambda c: c.send_ping),
        ("tools/call", lambda c: lambda: c.call_tool("gateway_check", CHECK)),
    ):
        for client in (memory, http):
            await _latencies(make(client), 100, 1)  # warm-up
        for concurrency in (1, 8):
            figures = {}
            for name, client in (("in-memory", memory), ("http", http)):
                samples, wall = await _latencies(make(client), calls, concurrency)
                figures[name] = _summary(samples, wall)
                p50, p99, rate = figures[name]
                print(f"  {label + ' ' + name:22} {concurrency:>4} {p50:>8.3f} {p99:>8.3f} {rate:>8.0f}")
            added = figures["http"][0] - figures["in-memory"][0]
            print(f"  {label + ' HTTP adds':22} {concurrency:>4} {added:>8.3f} ms (p50)")
    return 0


async def _run(opa: OpaServer, palette: FakePaletteServer, work: Path, calls: int) -> int:
    tokens = work / "tokens.jsonl"
    token = append_token(tokens, subject="bench", groups=("sre",))
    port = free_port()
    env = {
        "GATEWAY_OPA_URL": opa.url,
        "GATEWAY_OPA_TIMEOUT_SECONDS": "5",
        "GATEWAY_DB_PATH": str(work / "http.db"),
        "GATEWAY_TOKENS_FILE": str(tokens),
        "GATEWAY_KUBECONFIG": str(work / "no-kubeconfig"),
        **palette.environment(),
    }
    gateway = ManagedProcess(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--transport",
            "http",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        log_path=work / "gateway.log",
        env=env,
    )
    try:
        gateway.start_and_wait(
            lambda: answers_200(f"http://127.0.0.1:{port}/readyz"),
            timeout=60,
            what="gateway serve --transport http",
        )
        settings = Settings.model_validate(
            {
                "opa_url": opa.url,
                "opa_timeout_seconds": 5,
                "db_path": work / "memory.db",
                "subject": "bench",
                "groups": ("sre",),
                "PALETTE_HOST": palette.url,
                "PALETTE_API_KEY": palette.api_key,
                "PALETTE_PROJECT_UID": palette.project,
            }
        )
        async with (
            Client(build_server(settings), mode="legacy") as memory,
            _http_client(f"http://127.0.0.1:{port}/mcp", token) as http,
        ):
            return await _bench(memory, http, calls)
    finally:
        gateway.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per cell")
    parser.add_argument("--bundle", type=Path, help="a built bundle (default: build rego/ now)")
    options = parser.parse_args()
    logging.disable(logging.INFO)  # per-request INFO lines would dominate the output
    warnings.filterwarnings("ignore", message="ping is removed")  # legacy sessions on both sides
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = options.bundle or build_bundle(ROOT / "rego", work / "bundle.tar.gz", revision="bench")
        opa = OpaServer(bundle, log_path=work / "opa.log")
        palette = FakePaletteServer(api_key="bench-key", log_path=work / "palette.log")
        opa.start()
        try:
            palette.start()
            print(f"== HTTP transport vs in-memory: OPA {opa.url}, {options.calls} calls per cell")
            return asyncio.run(_run(opa, palette, work, options.calls))
        finally:
            palette.stop()
            opa.stop()


if __name__ == "__main__":
    sys.exit(main())
