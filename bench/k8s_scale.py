"""Benchmark: the Kubernetes read tools on a large living cluster (``make bench-k8s``).

Starts, as native processes: a real OPA serving the project bundle, the living sandbox
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) seeded with
``gateway sandbox seed --scale 5000`` (5,000 pods over 50 namespaces on 200 simulated
nodes, created and run by the controllers), and ``gateway serve --transport http``. Then,
in one run and interleaved round by round so all see the same machine load:

- ``direct list``: every pod through the official Kubernetes client, 500 a page
  (``list_pod_for_all_namespaces(limit=500)``, JSON decoded), the baseline;
- ``gateway list``: the same pages through the gateway: MCP ``tools/call`` of ``k8s_list``
  over streamable HTTP with a bearer token (authentication, the OPA decision, the audit
  record, the same list, redaction, the MCP reply), ``continue`` token to the end;
- ``gateway diagnose``: ``k8s_diagnose`` of the whole cluster (pods, workloads, warning
  events and nodes, each read page by page and folded into the report).

Printed: p50/p99 of a whole 5,000-pod listing and of one page, the ratio gateway/direct,
the diagnose p50/p99, and the gateway process's resident memory before and at its peak
(VmHWM): bounded memory means the peak does not grow with what was listed.

    .venv/bin/python -m bench.k8s_scale [--pods 5000] [--rounds 15] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.k8s_support import ServedGateway, percentile
from gateway.local.cluster import SandboxCluster
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.sandbox_seed import seed_sandbox, wait_until_alive
from gateway.local.seed_scale import ScalePlan, seed_scale

ROOT = Path(__file__).resolve().parent.parent
PAGE = 500


def _ms(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 0.5) * 1000:8.1f} ms   p99 {percentile(samples, 0.99) * 1000:8.1f} ms"


def _memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            fields[key] = int(value.split()[0])
    return fields


class Rounds:
    """Samples per contender: whole runs, and single pages where a run has pages."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = {}
        self.pages: dict[str, list[float]] = {}

    async def run(self, name: str, pages: Callable[[Callable[[float], None]], Awaitable[int]]) -> int:
        page_times = self.pages.setdefault(name, [])
        started = time.perf_counter()
        count = await pages(page_times.append)
        self.runs.setdefault(name, []).append(time.perf_counter() - started)
        return count


def _direct_lister(api: Any) -> Callable[[Callable[[float], None]], Awaitable[int]]:
    core = k8s.CoreV1Api(api)

    async def pages(record: Callable[[float], None]) -> int:
        count, token = 0, None
        while True:
            started = time.perf_counter()
            raw = core.list_pod_for_all_namespaces(limit=PAGE, _continue=token, _preload_content=False).data
            page = json.loads(raw)
            record(time.perf_counter() - started)
            count += len(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                return count

    return pages


def _gateway_lister(client: Client) -> Callable[[Callable[[float], None]], Awaitable[int]]:
    async def pages(record: Callable[[float], None]) -> int:
        count, token = 0, None
        while True:
            arguments: dict[str, Any] = {"kind": "pods", "limit": PAGE}
            if token:
                arguments["continue_token"] = token
            started = time.perf_counter()
            result = await client.call_tool("k8s_list", arguments)
            record(time.perf_counter() - started)
            if result.is_error or result.structured_content is None:
                raise RuntimeError(f"k8s_list was not allowed: {result.content}")
            count += result.structured_content["count"]
            token = result.structured_content["continue"]
            if not token:
                return count

    return pages


def _gateway_diagnose(
    client: Client, last: dict[str, Any]
) -> Callable[[Callable[[float], None]], Awaitable[int]]:
    async def one(record: Callable[[float], None]) -> int:
        started = time.perf_counter()
        result = await client.call_tool("k8s_diagnose", {})
        record(time.perf_counter() - started)
        if result.is_error or result.structured_content is None:
            raise RuntimeError(f"k8s_diagnose was not allowed: {result.content}")
        last.update(result.structured_content)
        return int(result.structured_content["summary"]["pods"])

    return one


async def _measure(url: str, token: str, api: Any, rounds: int, gateway_pid: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        diagnosis: dict[str, Any] = {}
        contenders = {
            "direct list": _direct_lister(api),
            "gateway list": _gateway_lister(client),
            "gateway diagnose": _gateway_diagnose(client, diagnosis),
        }
        warm = Rounds()
        for name, pages in contenders.items():  # connections, caches, lazy imports
            counted = await warm.run(name, pages)
            print(f"warm-up {name}: {counted} pods")
        before = _memory_kib(gateway_pid)
        measured = Rounds()
        for _ in range(rounds):
            for name, pages in contenders.items():
                await measured.run(name, pages)
        after = _memory_kib(gateway_pid)

    print(f"\n{rounds} rounds, interleaved; a listing is every pod, {PAGE} a page")
    for name in contenders:
        print(f"{name:<17} whole  {_ms(measured.runs[name])}")
        if name != "gateway diagnose":
            print(f"{'':<17} page   {_ms(measured.pages[name])}   ({len(measured.pages[name])} pages)")
    for scope in ("runs", "pages"):
        direct = percentile(getattr(measured, scope)["direct list"], 0.5)
        through = percentile(getattr(measured, scope)["gateway list"], 0.5)
        print(f"ratio gateway/direct list at p50 ({scope}): {through / direct:.2f}x")
    summary = diagnosis["summary"]
    print(
        f"diagnose: {summary['pods']} pods, {summary['workloads']} workloads, {summary['nodes']} nodes, "
        f"{diagnosis['scan']['pages']} pages read, {summary['findings']} findings "
        f"({len(diagnosis['findings'])} listed), truncated {diagnosis['truncated']}, "
        f"score {diagnosis['score']}"
    )
    print(
        f"gateway memory: RSS {before['VmRSS'] / 1024:.0f} MiB after warm-up, "
        f"{after['VmRSS'] / 1024:.0f} MiB at the end, peak (VmHWM) {after['VmHWM'] / 1024:.0f} MiB"
    )


def _seed(cluster: SandboxCluster, pods: int) -> None:
    began = time.monotonic()
    seed_sandbox(cluster.kubeconfig_path)
    wait_until_alive(cluster.kubeconfig_path)
    result = seed_scale(cluster.kubeconfig_path, ScalePlan.for_pods(pods), wait_seconds=1800)
    print(f"seeded in {time.monotonic() - began:.0f}s: {json.dumps(result)}")


async def run(pods: int, rounds: int, bundle: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-k8s-scale-") as tmp_name:
        tmp = Path(tmp_name)
        if bundle is None:
            bundle = build_bundle(ROOT / "rego", tmp / "b.tar.gz", revision="bench")
        opa = OpaServer(bundle, log_path=tmp / "opa.log")
        cluster = SandboxCluster(tmp / "sandbox")
        # Whole-cluster reads take longer than one object's: a wider per-request bound.
        gateway = ServedGateway(
            tmp, opa_url=opa.url, kubeconfig=cluster.kubeconfig_path, GATEWAY_KUBE_TIMEOUT_SECONDS="60"
        )
        try:
            opa.start()
            cluster.start()
            print(f"sandbox cluster ready in {cluster.started_in:.1f}s")
            _seed(cluster, pods)
            gateway.start()
            api = k8s_config.new_client_from_config(
                str(cluster.kubeconfig_path), context="sandbox", persist_config=False
            )
            try:
                await _measure(gateway.url, gateway.token, api, rounds, gateway.process.pid)
            finally:
                api.close()
        finally:
            gateway.stop()
            cluster.stop()
            opa.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--bundle", type=Path, default=None, help="a built bundle (default: build rego/)")
    args = parser.parse_args()
    asyncio.run(run(args.pods, args.rounds, args.bundle))


if __name__ == "__main__":
    main()
