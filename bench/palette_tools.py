"""Benchmark: Palette tool calls through the whole gateway against the raw Palette client.

Starts a real OPA serving the project bundle and the fake Palette API (spec checks off:
they would dominate), then measures sequentially, with warm connections:

- ``raw``: ``PaletteClient`` alone: ``get_cluster`` (one GET) and ``search_clusters`` (61
  clusters, two pages);
- ``gateway``: the same reads as MCP tool calls (in-memory MCP session): argument
  validation, ``prepare`` (one GET to resolve the cluster's environment), the OPA decision,
  the audit record (SQLite), ``execute`` and redaction.

It prints p50, p99 and calls/s for each, and the gateway's added latency. What the gateway
adds is the point: the fake answers in well under a millisecond, so a real Palette
(tens of milliseconds per call) only shrinks the share.

    .venv/bin/python -m bench.palette_tools [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client

from gateway.local.fake_palette import FakePaletteServer
from gateway.local.opa import OpaServer, build_bundle
from gateway.palette.client import PaletteClient
from gateway.palette.tools import open_backend
from gateway.server import build_server
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key-not-secret"


async def _measure(call: Callable[[], Awaitable[Any]], calls: int) -> list[float]:
    for _ in range(min(20, calls)):
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _line(name: str, samples: list[float]) -> str:
    p50 = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100)[98]
    rate = 1000 * len(samples) / sum(samples)
    return f"{name:<28} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   {rate:8.0f} calls/s"


async def _run(opa: OpaServer, fake: FakePaletteServer, tmp: Path, calls: int) -> None:
    env = fake.environment()
    settings = Settings(
        opa_url=opa.url,
        db_path=tmp / "bench.db",
        subject="bench",
        groups=("sre",),
        PALETTE_HOST=env["PALETTE_HOST"],
        PALETTE_API_KEY=env["PALETTE_API_KEY"],
        PALETTE_PROJECT_UID=env["PALETTE_PROJECT_UID"],
        # The client-side rate limits (8 requests/s by default) would make both rows measure
        # the limit; this benchmark is about what the gateway adds to a call.
        palette_rate_per_second=0,
        palette_profiles_rate_per_second=0,
    )
    async with PaletteClient.from_settings(settings) as raw:
        clusters = await raw.search_clusters({})
        uid = next(c["metadata"]["uid"] for c in clusters if c["metadata"]["name"] == "prod-payments")
        raw_get = await _measure(lambda: raw.get_cluster(uid), calls)
        raw_list = await _measure(lambda: raw.search_clusters({}), max(10, calls // 5))
    server = build_server(settings, backends=[open_backend])
    # Per-call INFO lines to a console would be measured too; the benchmark is about the path.
    logging.disable(logging.INFO)
    async with Client(server) as client:

        async def tool(name: str, arguments: dict[str, Any]) -> None:
            result = await client.call_tool(name, arguments)
            if result.is_error:
                raise RuntimeError(f"{name} failed during the benchmark")

        gw_get = await _measure(lambda: tool("palette_get_cluster", {"uid": uid}), calls)
        gw_list = await _measure(lambda: tool("palette_list_clusters", {}), max(10, calls // 5))
    print(_line("raw get_cluster", raw_get))
    print(_line("gateway palette_get_cluster", gw_get))
    print(_line("raw search (61, 2 pages)", raw_list))
    print(_line("gateway palette_list_clusters", gw_list))
    added = statistics.median(gw_get) - statistics.median(raw_get)
    print(f"gateway adds {added:.2f} ms at p50 to a one-cluster read (incl. the prepare GET)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        bundle = build_bundle(ROOT / "rego", tmp / "bundle.tar.gz", revision="bench")
        opa = OpaServer(bundle, log_path=tmp / "opa.log")
        fake = FakePaletteServer(api_key=API_KEY, log_path=tmp / "fake.log")
        opa.start()
        try:
            fake.start()
            try:
                asyncio.run(_run(opa, fake, tmp, args.calls))
            finally:
                fake.stop()
        finally:
            opa.stop()


if __name__ == "__main__":
    main()
