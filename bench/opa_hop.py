"""Benchmark: the OPA hop of a gated read, taken apart.

Starts OPA with the project bundle, listening on loopback TCP and on a Unix domain socket
at once (``--addr`` twice), plus a second OPA serving the same bundle without its rules
(``rego/rules`` left out: the decision document over no rule at all). Then, interleaved in
blocks, it posts the proposed action of a ``k8s_get`` (as ``bench.e2e`` reads it) with
one aiohttp session per way of reaching OPA, and reports:

- ``tcp`` / ``unix``: the round trip over TCP (what the gateway uses) and over the Unix
  socket (``opa run --addr unix://…``);
- ``tcp, console log``: the same OPA configuration as shipped, console decision log on;
- ``no rules``: the decision document without rules, for the rules' own cost;

with p50, mean and OPA's own evaluation time (``?metrics=true``: ``timer_server_handler_ns``
and ``timer_rego_query_eval_ns``), and OPA's CPU per decision from ``/proc``.

    .venv/bin/python -m bench.opa_hop [--calls 3000] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e import OPA_CONFIG, cpu_seconds
from bench.k8s_support import percentile
from gateway.contracts import Principal, ProposedAction, Target
from gateway.local.opa import OpaServer, build_bundle

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 100


def _read_input() -> dict[str, Any]:
    return ProposedAction(
        tool="k8s_get", backend="kubernetes", operation="get", effect="read",
        target=Target(cluster="sandbox", namespace="payments", api_version="apps/v1", kind="Deployment",
                      name="api", environment="production"),
        args={"kind": "deploy", "name": "api", "namespace": "payments"},
        principal=Principal(subject="bench", groups=("sre",), transport="http", authenticated=True),
    ).as_input()  # fmt: skip


async def _measure(contenders: dict[str, tuple[aiohttp.ClientSession, str, int]], calls: int) -> None:
    body = {"input": _read_input()}
    samples: dict[str, list[float]] = defaultdict(list)
    timers: dict[str, list[tuple[int, int]]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    for session, url, _ in contenders.values():  # warm-up
        for _ in range(200):
            async with session.post(url, json=body) as response:
                await response.read()
    while len(samples["tcp"]) < calls:
        for name, (session, url, pid) in contenders.items():
            before = cpu_seconds(pid)
            for _ in range(BLOCK):
                started = time.perf_counter()
                async with session.post(url, json=body) as response:
                    answer = await response.json()
                samples[name].append(time.perf_counter() - started)
                metrics = answer.get("metrics", {})
                handler, evaluation = "timer_server_handler_ns", "timer_rego_query_eval_ns"
                timers[name].append((metrics.get(handler, 0), metrics.get(evaluation, 0)))
            cpu[name] += cpu_seconds(pid) - before
    print(f"{'':<18} {'p50 ms':>7} {'mean ms':>7} {'handler µs':>10} {'eval µs':>8} {'OPA CPU µs':>10}")
    for name, values in samples.items():
        handler = statistics.fmean(t[0] for t in timers[name]) / 1e3
        evaluation = statistics.fmean(t[1] for t in timers[name]) / 1e3
        print(
            f"{name:<18} {percentile(values, 0.5) * 1e3:7.3f} {statistics.fmean(values) * 1e3:7.3f} "
            f"{handler:10.0f} {evaluation:8.0f} {cpu[name] / len(values) * 1e6:10.0f}"
        )


async def run(calls: int, bundle: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-opa-") as tmp_name:
        tmp = Path(tmp_name)
        bundle = bundle or build_bundle(ROOT / "rego", tmp / "b.tar.gz", revision="bench")
        bare = build_bundle(
            ROOT / "rego", tmp / "bare.tar.gz", revision="bare", extra_args=["--ignore", "rules"]
        )
        socket = tmp / "opa.sock"
        quiet = OpaServer(bundle, log_path=tmp / "quiet.log", extra_args=[f"--addr=unix://{socket}"])
        logged = OpaServer(bundle, log_path=tmp / "logged.log", extra_args=[f"--config-file={OPA_CONFIG}"])
        norules = OpaServer(bare, log_path=tmp / "bare.log")
        servers = (quiet, logged, norules)
        try:
            for server in servers:
                server.start()
            path = "/v1/data/gateway/decision?metrics=true"
            async with (
                aiohttp.ClientSession() as tcp,
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as unix,
                aiohttp.ClientSession() as tcp_logged,
                aiohttp.ClientSession() as tcp_bare,
            ):
                await _measure(
                    {
                        "tcp": (tcp, f"{quiet.url}{path}", quiet.process.pid),
                        "unix": (unix, f"http://opa{path}", quiet.process.pid),
                        "tcp, console log": (tcp_logged, f"{logged.url}{path}", logged.process.pid),
                        "no rules": (tcp_bare, f"{norules.url}{path}", norules.process.pid),
                    },
                    calls,
                )
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--bundle", type=Path, default=None, help="a built bundle (default: build rego/)")
    options = parser.parse_args()
    asyncio.run(run(options.calls, options.bundle))


if __name__ == "__main__":
    main()
