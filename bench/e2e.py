"""Benchmark: a gated read end to end against the floor, an ungated server doing the same read.

Starts, as native processes: OPA serving the project bundle with the shipped sidecar
configuration (``deploy/opa/config.yaml``), etcd + kube-apiserver (seeded sandbox), the
gateway (``gateway serve --transport http``) and ``bench.plain_server``: the same MCP SDK,
the same ``kubernetes`` client, the same reads, no policy and no audit. Then, in rounds
that interleave every contender and every scenario (the machine is shared and noisy):

- ``get``  ``k8s_get`` of Deployment ``payments/api``;
- ``list`` ``k8s_list`` of the Deployments in ``payments``;
- ``deny`` (gateway only) ``k8s_apply`` of a privileged Pod, which policy denies;

at concurrency 1 (one MCP session) and 8 (eight sessions, one call in flight on each),
over streamable HTTP with the gateway's bearer token. Printed as one table: p50, p99,
calls/s, and server CPU in ms per call read from ``/proc/<pid>/stat`` for the server
process and, for the gateway, its OPA; ratios to the ungated server; then the issue's
targets, and where a gated call's time goes (the gateway's per-stage means from its own
``/metrics``, fed by ``gateway.instruments``: admission, prepare, history, OPA decision,
audit, backend, redaction, reply, and the MCP SDK + HTTP outside the call path).

Levers are measured the same way, in the same run: ``--variant NAME:KEY=VALUE,...``
starts one more gateway with those ``GATEWAY_*`` settings; ``--variant-src NAME:DIR``
one more gateway run from another source tree (``git worktree add DIR <commit>``: the code
before a change); ``--variant-opa NAME:ARG`` gives a variant its own OPA with that extra
argument (``--variant-opa nolog:--set=decision_logs.console=false``).

    .venv/bin/python -m bench.e2e [--rounds 12] [--calls 40] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.k8s_support import ServedGateway, percentile
from gateway.local.kube import KubeApiServer
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.ops_session import PRIVILEGED_POD
from gateway.local.process import ManagedProcess, free_port, wait_until
from gateway.local.sandbox_seed import seed_sandbox
from gateway.metrics import STAGES

ROOT = Path(__file__).resolve().parent.parent
OPA_CONFIG = ROOT / "deploy" / "opa" / "config.yaml"
SESSIONS = 8
PLAIN = "plain"
GATEWAY = "gateway"
# scenario -> (tool, arguments, whether the call must be refused, concurrency)
SCENARIOS: dict[str, tuple[str, dict[str, Any], bool, int]] = {
    "get c1": ("k8s_get", {"kind": "deploy", "name": "api", "namespace": "payments"}, False, 1),
    "get c8": ("k8s_get", {"kind": "deploy", "name": "api", "namespace": "payments"}, False, 8),
    "list c1": ("k8s_list", {"kind": "deploy", "namespace": "payments"}, False, 1),
    "list c8": ("k8s_list", {"kind": "deploy", "namespace": "payments"}, False, 8),
    "deny c1": ("k8s_apply", {"manifest": PRIVILEGED_POD}, True, 1),
}
# A shared machine stalls now and then: a benchmark measures, it does not fail closed.
STALL_TOLERANT = {"GATEWAY_OPA_TIMEOUT_SECONDS": "5", "GATEWAY_HISTORY_READ_TIMEOUT_SECONDS": "5"}
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SAMPLE = re.compile(r'^gateway_(stage|tool_call)_duration_seconds_(sum|count)\{(\w+)="([^"]+)"\} (\S+)$')


def cpu_seconds(pid: int) -> float:
    """User + system CPU of every thread of ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def stage_totals(url: str) -> dict[str, tuple[float, float]]:
    """Each stage's (seconds, count) so far, and the whole call's as ``call``, from ``/metrics``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            what, part, _, label, value = match.groups()
            name = label if what == "stage" else "call"
            sums[name][0 if part == "sum" else 1] += float(value)
    return {name: (pair[0], pair[1]) for name, pair in sums.items()}


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url`` at all (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class Cell:
    """One contender in one scenario, accumulated over the rounds."""

    samples: list[float] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    opa_cpu: float = 0.0
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))

    @property
    def calls(self) -> int:
        return len(self.samples)

    def p(self, q: float) -> float:
        return percentile(self.samples, q)

    @property
    def rate(self) -> float:
        return self.calls / self.wall if self.wall else 0.0


@dataclass
class Contender:
    """A server under test: its process, its OPA (gateways), its MCP sessions."""

    name: str
    url: str
    pid: int
    opa_pid: int | None
    gated: bool
    sessions: list[Client] = field(default_factory=list)

    async def call(self, session: int, tool: str, arguments: dict[str, Any], refused: bool) -> None:
        result = await self.sessions[session].call_tool(tool, arguments)
        if bool(result.is_error) != refused:
            raise RuntimeError(f"{self.name}: {tool} answered is_error={result.is_error}: {result.content}")


async def _block(contender: Contender, scenario: str, calls: int, cell: Cell) -> None:
    """``calls`` calls of ``scenario`` on ``contender``, timed, with the CPU it cost."""
    tool, arguments, refused, concurrency = SCENARIOS[scenario]
    before_stages = stage_totals(contender.url) if contender.gated else {}
    opa_before = cpu_seconds(contender.opa_pid) if contender.opa_pid else 0.0
    cpu_before, started = cpu_seconds(contender.pid), time.perf_counter()

    async def worker(session: int) -> None:
        for _ in range(calls // concurrency):
            begun = time.perf_counter()
            await contender.call(session, tool, arguments, refused)
            cell.samples.append(time.perf_counter() - begun)

    await asyncio.gather(*(worker(s) for s in range(concurrency)))
    cell.wall += time.perf_counter() - started
    cell.server_cpu += cpu_seconds(contender.pid) - cpu_before
    if contender.opa_pid:
        cell.opa_cpu += cpu_seconds(contender.opa_pid) - opa_before
    if contender.gated:
        for name, (seconds, count) in stage_totals(contender.url).items():
            old = before_stages.get(name, (0.0, 0.0))
            cell.stages[name][0] += seconds - old[0]
            cell.stages[name][1] += count - old[1]


Results = dict[tuple[str, str], Cell]


async def measure(contenders: list[Contender], rounds: int, calls: int) -> Results:
    results: Results = defaultdict(Cell)
    for contender in contenders:  # warm-up: connections, caches, lazy imports, OPA's JIT-free warm path
        for scenario in SCENARIOS:
            if contender.gated or not SCENARIOS[scenario][2]:
                await _block(contender, scenario, 16, Cell())
    for number in range(rounds):
        order = contenders if number % 2 == 0 else contenders[::-1]  # neither always goes first
        for scenario in SCENARIOS:
            for contender in order:
                if contender.gated or not SCENARIOS[scenario][2]:
                    await _block(contender, scenario, calls, results[contender.name, scenario])
    return results


def _innermost(exc: BaseException) -> BaseException:
    """The first leaf of nested exception groups (what actually went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.2f}"


def report(results: Results, contenders: list[Contender]) -> None:
    names = [c.name for c in contenders]
    head = ("scenario", "server", "p50 ms", "p99 ms", "calls/s", "CPU ms/call: srv", "OPA", "sum")
    print("{:<8} {:<14} {:>7} {:>7} {:>7} {:>16} {:>5} {:>5}   vs plain: p50   c/s   CPU".format(*head))
    for scenario in SCENARIOS:
        base = results.get((PLAIN, scenario))
        for name in names:
            cell = results.get((name, scenario))
            if cell is None or not cell.calls:
                continue
            srv, opa = cell.server_cpu / cell.calls * 1e3, cell.opa_cpu / cell.calls * 1e3
            line = (
                f"{scenario:<8} {name:<14} {_ms(cell.p(0.5))} {_ms(cell.p(0.99))} {cell.rate:7.0f} "
                f"{srv:16.2f} {opa:5.2f} {srv + opa:5.2f}"
            )
            if base is not None and name != PLAIN:
                base_cpu = base.server_cpu / base.calls * 1e3
                line += (
                    f"   {' ' * 8} {cell.p(0.5) / base.p(0.5):5.2f} {cell.rate / base.rate:5.2f} "
                    f"{(srv + opa) / base_cpu:5.2f}"
                )
            print(line)
    for name in names:
        if name != PLAIN:
            _targets(results, name)
            _breakdown(results, name)


def _targets(results: Results, name: str) -> None:
    plain, get, get8 = results[PLAIN, "get c1"], results[name, "get c1"], results[name, "get c8"]
    plain8, deny = results[PLAIN, "get c8"], results[name, "deny c1"]
    plain_cpu = plain.server_cpu / plain.calls
    gw_cpu, opa_cpu = get.server_cpu / get.calls, get.opa_cpu / get.calls
    checks = (
        ("read p50 / ungated", get.p(0.5) / plain.p(0.5), 1.25, "<="),
        ("c8 calls/s / ungated", get8.rate / plain8.rate, 0.8, ">="),
        ("denied write p50 / gated read", deny.p(0.5) / get.p(0.5), 1.5, "<="),
        ("CPU/read / (ungated + OPA)", gw_cpu / (plain_cpu + opa_cpu), 1.2, "<="),
    )
    print(f"targets, {name} (get):")
    for label, value, bound, sense in checks:
        met = value <= bound if sense == "<=" else value >= bound
        print(f"  {label:<32} {value:5.2f}  (target {sense} {bound}: {'met' if met else 'NOT met'})")


def _breakdown(results: Results, name: str) -> None:
    print(f"where a call's time goes, {name}, mean ms per call (gateway /metrics):")
    for scenario in SCENARIOS:
        cell = results.get((name, scenario))
        if cell is None or not cell.calls or not cell.stages.get("call", [0, 0])[1]:
            continue
        calls = cell.stages["call"][1]
        parts = [f"{s} {cell.stages[s][0] / calls * 1e3:.2f}" for s in STAGES if cell.stages[s][1]]
        inside = cell.stages["call"][0] / calls
        outside = statistics.fmean(cell.samples) - inside
        print(f"  {scenario:<8} {', '.join(parts)}; call path {inside * 1e3:.2f}, "
              f"outside it (SDK, HTTP, auth, client) {outside * 1e3:.2f}")  # fmt: skip


@contextlib.asynccontextmanager
async def sessions(contender: Contender, token: str | None) -> AsyncIterator[Contender]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(SESSIONS):
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60))
            )
            transport = streamable_http_client(f"{contender.url}/mcp", http_client=http)
            contender.sessions.append(await stack.enter_async_context(Client(transport)))
        yield contender


@dataclass
class Variant:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    src: Path | None = None
    opa_args: list[str] = field(default_factory=list)


def _variants(options: argparse.Namespace) -> list[Variant]:
    found: dict[str, Variant] = {GATEWAY: Variant(GATEWAY)}

    def named(spec: str) -> tuple[Variant, str]:
        name, _, rest = spec.partition(":")
        return found.setdefault(name, Variant(name)), rest

    for spec in options.variant:
        variant, rest = named(spec)
        variant.env.update(dict(pair.split("=", 1) for pair in rest.split(",") if pair))
    for spec in options.variant_src:
        variant, rest = named(spec)
        variant.src = Path(rest).resolve()
    for spec in options.variant_opa:
        variant, rest = named(spec)
        variant.opa_args.append(rest)
    return list(found.values())


async def run(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp_name, contextlib.ExitStack() as stop:
        tmp = Path(tmp_name)
        bundle = options.bundle or build_bundle(ROOT / "rego", tmp / "b.tar.gz", revision="bench")
        kube = KubeApiServer(tmp / "kube")
        stop.callback(kube.stop)
        kube.start()
        seed_sandbox(kube.kubeconfig_path, nodes_within=None)  # no kwok: nothing runs, reads are enough
        opas: dict[tuple[str, ...], OpaServer] = {}
        contenders: list[Contender] = []
        tokens: dict[str, str | None] = {}
        logs: dict[str, ManagedProcess] = {}
        for variant in _variants(options):
            key = tuple(variant.opa_args)
            if key not in opas:
                opa = OpaServer(bundle, log_path=tmp / f"opa-{len(opas)}.log",
                                extra_args=[f"--config-file={OPA_CONFIG}", *variant.opa_args])  # fmt: skip
                stop.callback(opa.stop)
                opa.start()
                opas[key] = opa
            opa = opas[key]
            work = tmp / variant.name
            work.mkdir()
            served = ServedGateway(
                work, opa_url=opa.url, kubeconfig=kube.kubeconfig_path, source=variant.src,
                **{**STALL_TOLERANT, **variant.env},
            )  # fmt: skip
            stop.callback(served.stop)
            served.start()
            contenders.append(Contender(variant.name, served.url, served.process.pid, opa.process.pid, True))
            tokens[variant.name] = served.token
            logs[variant.name] = served.process
        port = free_port()
        plain = ManagedProcess(
            [sys.executable, "-m", "bench.plain_server", "--kubeconfig", str(kube.kubeconfig_path),
             "--context", "sandbox", "--port", str(port)],
            log_path=tmp / "plain.log",
        )  # fmt: skip
        stop.callback(plain.stop)
        plain.start()
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/mcp"), timeout=60, what="plain server")
        contenders.insert(0, Contender(PLAIN, url, plain.pid, None, False))
        tokens[PLAIN] = None
        failure = ""
        async with contextlib.AsyncExitStack() as clients:
            for contender in contenders:
                await clients.enter_async_context(sessions(contender, tokens[contender.name]))
            print(f"{options.rounds} interleaved rounds of {options.calls} calls per scenario and server; "
                  f"OPA with {OPA_CONFIG.relative_to(ROOT)}")  # fmt: skip
            try:
                results = await measure(contenders, options.rounds, options.calls)
            except Exception as exc:
                # Raised from here, it would come out of eight task groups per server.
                failure = f"benchmark failed: {_innermost(exc)!r}"
        if failure:
            for name, process in logs.items():
                print(f"-- {name}'s log:\n{process.tail(15)}", file=sys.stderr)
            sys.exit(failure)
        report(results, contenders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--calls", type=int, default=40, help="calls per scenario, server and round")
    parser.add_argument("--bundle", type=Path, default=None, help="a built bundle (default: build rego/)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--variant-src", action="append", default=[], metavar="NAME:DIR")
    parser.add_argument("--variant-opa", action="append", default=[], metavar="NAME:ARG")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
