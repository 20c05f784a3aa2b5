"""Benchmark: an allowed ``k8s_get`` through the whole gateway, next to the same read made
directly with the Kubernetes client.

Starts, as native processes: a real OPA serving the project bundle, etcd + kube-apiserver
(seeded sandbox), and ``gateway serve --transport http``. Then, in one run and on the
same object (Deployment ``payments/api``), it measures sequential calls of:

- ``direct``: the official Kubernetes client (``read_namespaced_deployment``, JSON
  decoded), the baseline: what the read costs without any gateway;
- ``gateway``: an MCP ``tools/call`` of ``k8s_get`` over streamable HTTP with a bearer
  token: authentication, admission, kind resolution (cached), the OPA decision, the audit
  record, the same GET, redaction and the MCP reply;
- ``opa alone``: the decision for the same proposed action posted straight to OPA, to show
  how much of the overhead the policy engine itself takes.

The three are interleaved in blocks, so all see the same machine load. Printed: p50, p99,
calls/s, the ratio gateway/direct, and the gateway's overhead at p50 (target <= 1 ms).

    .venv/bin/python -m bench.k8s_get [--calls 400] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
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
from gateway.contracts import Principal, ProposedAction, Target
from gateway.local.kube import KubeApiServer
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.sandbox_seed import seed_sandbox

ROOT = Path(__file__).resolve().parent.parent
TARGET = {"kind": "deploy", "name": "api", "namespace": "payments"}
BLOCK = 25


def _row(name: str, samples: list[float], wall: float) -> str:
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    return f"{name:<10} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   {len(samples) / wall:8.0f} calls/s"


def _k8s_get_action(cluster: str) -> dict[str, Any]:
    """The proposed action the gateway sends OPA for ``TARGET`` (for the OPA-alone row)."""
    return ProposedAction(
        tool="k8s_get",
        backend="kubernetes",
        operation="get",
        effect="read",
        target=Target(cluster=cluster, namespace="payments", api_version="apps/v1", kind="Deployment",
                      name="api", environment="production"),
        args=TARGET,
        principal=Principal(subject="bench", groups=("sre",), transport="http", authenticated=True),
    ).as_input()  # fmt: skip


async def _measure(calls: int, contenders: dict[str, Callable[[], Awaitable[Any]]]) -> None:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    wall = dict.fromkeys(contenders, 0.0)
    while len(samples["direct"]) < calls:
        for name, call in contenders.items():
            block_start = time.perf_counter()
            for _ in range(BLOCK):
                started = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - started)
            wall[name] += time.perf_counter() - block_start
    for name in contenders:
        print(_row(name, samples[name], wall[name]))
    d50, g50 = statistics.median(samples["direct"]), statistics.median(samples["gateway"])
    print(f"ratio gateway/direct at p50: {g50 / d50:.2f}x")
    print(f"gateway overhead at p50: {(g50 - d50) * 1000:.2f} ms (target <= 1 ms)")


async def run(calls: int, bundle: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp_name:
        tmp = Path(tmp_name)
        if bundle is None:
            bundle = build_bundle(ROOT / "rego", tmp / "b.tar.gz", revision="bench")
        opa = OpaServer(bundle, log_path=tmp / "opa.log")
        kube = KubeApiServer(tmp / "kube")
        gateway = ServedGateway(tmp, opa_url=opa.url, kubeconfig=kube.kubeconfig_path)
        url, token = gateway.url, gateway.token
        try:
            opa.start()
            kube.start()
            print(f"kube-apiserver ready in {kube.started_in:.2f}s")
            seed_sandbox(kube.kubeconfig_path, nodes_within=None)  # no kwok here: nodes stay down
            gateway.start()
            api = k8s_config.new_client_from_config(
                str(kube.kubeconfig_path), context="sandbox", persist_config=False
            )
            apps = k8s.AppsV1Api(api)

            async def direct() -> dict[str, Any]:
                data = apps.read_namespaced_deployment("api", "payments", _preload_content=False).data
                decoded: dict[str, Any] = json.loads(data)
                return decoded

            decision_input = {"input": _k8s_get_action(kube.context)}

            async def opa_alone() -> Any:
                return (
                    await opa_http.post(f"{opa.url}/v1/data/gateway/decision", json=decision_input)
                ).json()

            headers = {"Authorization": f"Bearer {token}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30)) as http,
                httpx2.AsyncClient(timeout=httpx2.Timeout(30)) as opa_http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
            ):

                async def through_gateway() -> Any:
                    result = await client.call_tool("k8s_get", TARGET)
                    if result.is_error:
                        raise RuntimeError(f"k8s_get was not allowed: {result.content}")
                    return result

                first = await through_gateway()
                assert first.structured_content is not None
                assert first.structured_content["metadata"]["name"] == "api"
                contenders = {"direct": direct, "gateway": through_gateway, "opa alone": opa_alone}
                for _ in range(30):  # warm-up: connections, caches, lazy imports
                    for call in contenders.values():
                        await call()
                print(f"{calls} sequential calls each, interleaved in blocks of {BLOCK}")
                await _measure(calls, contenders)
            api.close()
        finally:
            gateway.stop()
            kube.stop()
            opa.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--bundle", type=Path, default=None, help="a built bundle (default: build rego/)")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.bundle))


if __name__ == "__main__":
    main()
