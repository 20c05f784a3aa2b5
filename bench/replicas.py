"""Benchmark: decisions per second with one and with three gateway replicas on PostgreSQL.

Starts, as native processes: a real OPA serving the project bundle, etcd + kube-apiserver
(seeded sandbox), a real PostgreSQL, and three ``gateway serve --transport http`` replicas
on it (stateless HTTP, shared tokens and keys, as the Helm chart runs them), plus one
gateway on SQLite for reference. ``--clients`` MCP clients then call ``k8s_get`` (an
allowed read: authentication, the OPA decision, two chained audit records serialised
across replicas by the database, the GET, redaction) as fast as they can, in rounds:

- ``pg x1``: every client on replica 1;
- ``pg x3``: the clients spread over the three replicas;
- ``sqlite x1``: every client on the SQLite gateway.

The rounds are interleaved (``--rounds`` of each, same clients, same machine), so each
figure shares the machine's load with the others. Printed per round: decisions/s, p50 and
p99 latency; then pg x3 and sqlite x1 as ratios of pg x1. On a 2-core machine the replicas,
OPA, the API server and PostgreSQL share two cores: the ratio says how much a second and
third process buys when the cores are already busy, not what three nodes would do.

    .venv/bin/python -m bench.replicas [--clients 6] [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.k8s_support import ServedGateway, percentile
from gateway.local.kube import KubeApiServer
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.postgres import PostgresServer
from gateway.local.sandbox_seed import seed_sandbox
from gateway.queue.proofs import Attestor
from gateway.queue.sealing import Sealer
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGET = {"kind": "deploy", "name": "api", "namespace": "payments"}


@contextlib.asynccontextmanager
async def _client(url: str, token: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def _load(clients: list[Client], seconds: float) -> tuple[list[float], float]:
    """Every client calls k8s_get back to back for ``seconds``; latencies and wall time."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(client: Client) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            result = await client.call_tool("k8s_get", TARGET)
            latencies.append(time.perf_counter() - start)
            if result.is_error:
                raise RuntimeError(f"k8s_get was not allowed: {result.content}")

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    return latencies, time.perf_counter() - started


# Long on purpose: the whole topology is started, measured in interleaved rounds and
# stopped in one place, so nothing outlives the run.
async def run(clients: int, seconds: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp_name:
        tmp = Path(tmp_name)
        opa = OpaServer(
            build_bundle(ROOT / "rego", tmp / "b.tar.gz", revision="bench"), log_path=tmp / "opa.log"
        )
        kube = KubeApiServer(tmp / "kube")
        postgres = PostgresServer()
        shared = {
            "GATEWAY_STATELESS_HTTP": "true",
            "GATEWAY_QUEUE_KEYS_FILE": str(tmp / "queue.keys"),
            "GATEWAY_ATTESTATION_KEY_FILE": str(tmp / "attestation.key"),
        }
        keys = Settings(db_path=tmp / "unused.db", queue_keys_file=tmp / "queue.keys")
        Sealer.from_settings(keys, create=True)
        Attestor.load_or_create(tmp / "attestation.key")
        gateways: dict[str, ServedGateway] = {}
        try:
            opa.start()
            kube.start()
            postgres.start()
            seed_sandbox(kube.kubeconfig_path, nodes_within=None)  # no kwok here: nodes stay down
            for name in ("pg-1", "pg-2", "pg-3", "sqlite"):
                (tmp / name).mkdir()
                settings = dict(shared, GATEWAY_INSTANCE=name)
                if name != "sqlite":
                    settings["GATEWAY_DATABASE_URL"] = postgres.url()
                if name != "pg-1":  # one tokens file: the bench's token works on every gateway
                    settings["GATEWAY_TOKENS_FILE"] = str(tmp / "pg-1" / "tokens")
                gateways[name] = ServedGateway(
                    tmp / name, opa_url=opa.url, kubeconfig=kube.kubeconfig_path, **settings
                )
                gateways[name].start()
            urls = {name: gateway.url for name, gateway in gateways.items()}
            await _measure(urls, gateways["pg-1"].token, clients, seconds, rounds)
        finally:
            for gateway in gateways.values():
                gateway.stop()
            postgres.stop()
            kube.stop()
            opa.stop()


async def _measure(urls: dict[str, str], token: str, clients: int, seconds: float, rounds: int) -> None:
    layouts = {
        "pg x1": [urls["pg-1"]] * clients,
        "pg x3": [urls[f"pg-{1 + n % 3}"] for n in range(clients)],
        "sqlite x1": [urls["sqlite"]] * clients,
    }
    results: dict[str, list[tuple[list[float], float]]] = {name: [] for name in layouts}
    async with contextlib.AsyncExitStack() as stack:
        connected = {
            name: [await stack.enter_async_context(_client(url, token)) for url in targets]
            for name, targets in layouts.items()
        }
        for group in connected.values():  # warm-up: connections, caches, lazy imports
            await _load(group, 1.0)
        print(
            f"{clients} concurrent MCP clients, k8s_get, {seconds:g}s per round, {rounds} interleaved rounds"
        )
        for number in range(rounds):
            order = list(connected) if number % 2 == 0 else list(reversed(connected))
            for name in order:
                results[name].append(await _load(connected[name], seconds))
    _report(results)


def _row(latencies: list[float], wall: float) -> tuple[float, float, float]:
    return len(latencies) / wall, statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000


def _report(results: dict[str, list[tuple[list[float], float]]]) -> None:
    print(f"\n  {'layout':<10} {'decisions/s (rounds)':>26} {'p50 ms (rounds)':>22} {'p99 ms (rounds)':>24}")
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for name, rounds in results.items():
        rows[name] = [_row(latencies, wall) for latencies, wall in rounds]
        rates = " ".join(f"{r[0]:.0f}" for r in rows[name])
        p50s = " ".join(f"{r[1]:.1f}" for r in rows[name])
        p99s = " ".join(f"{r[2]:.1f}" for r in rows[name])
        print(f"  {name:<10} {rates:>26} {p50s:>22} {p99s:>24}")
    base = rows["pg x1"]
    for name in ("pg x3", "sqlite x1"):
        ratios = " | ".join(
            f"x{ours[0] / theirs[0]:.2f} decisions/s, p50 x{ours[1] / theirs[1]:.2f}"
            for ours, theirs in zip(rows[name], base, strict=True)
        )
        print(f"  {name} vs pg x1 (same rounds): {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(run(options.clients, options.seconds, options.rounds))


if __name__ == "__main__":
    main()
