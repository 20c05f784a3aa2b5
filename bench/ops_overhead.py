"""Benchmark: what runaway counters, metrics and tracing add to a gated read.

Starts a real OPA serving the project bundle and a seeded sandbox kube-apiserver, then
builds, in this one process, gateways that differ only in their instrumentation and run
the same allowed ``k8s_get`` (Deployment ``payments/api``, as an sre) through the whole
decision path (``Gateway.call``: admission, planning with the live object, OPA, the audit
record in SQLite, the GET, redaction):

- ``bare``       no metrics (a registry that records nothing), no counters, no spans;
- ``metrics``    the Prometheus series (step timings, call counters and histograms);
- ``counters``   runaway protection's counts (one read of the activity table per call,
                 rows written in batches), no metrics;
- ``spans``      OpenTelemetry spans recorded, exported nowhere;
- ``otlp``       spans exported over OTLP/HTTP to a local collector (batch processor);
- ``default``    metrics + counters: what ships, tracing off;
- ``all``        metrics + counters + OTLP export.

Calls are sequential and interleaved in blocks across the variants, so every variant sees
the same machine load. Printed: p50, p99, calls/s and the ratio of each to ``bare``. The
Kubernetes client's request counter is recorded in every variant (one client is shared).
Below the table, the instrumentation's own CPU cost per call, measured alone: the numbers
that stay put when the machine is shared and the end-to-end ratios move.

    .venv/bin/python -m bench.ops_overhead [--calls 600] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bench.k8s_support import percentile
from gateway.contracts import Principal
from gateway.history import ActivityLog
from gateway.instruments import Instruments
from gateway.kubernetes.tools import open_backend
from gateway.local.kube import KubeApiServer
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.sandbox_seed import seed_sandbox
from gateway.metrics import STAGES, Metrics
from gateway.pipeline import Gateway
from gateway.policy import PolicyClient
from gateway.queue.store import QueueStore
from gateway.settings import Settings
from gateway.tools import ToolRegistry
from gateway.tracing import Tracing

ROOT = Path(__file__).resolve().parent.parent
ARGS = {"kind": "deploy", "name": "api", "namespace": "payments"}
SRE = Principal(subject="bench", groups=("sre",), transport="http", authenticated=True)
BLOCK = 25
VARIANTS = ("bare", "metrics", "counters", "spans", "otlp", "default", "all")

Call = Callable[[], Awaitable[Any]]


class SilentMetrics(Metrics):
    """A registry whose every recording is a no-op: the ``bare`` baseline."""

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        return None

    record_call = observe_call = observe_stage = record_violations = _nothing
    observe_decision = record_opa_error = record_backend_request = _nothing


class _NullExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class _Collector:
    """An OTLP/HTTP endpoint that accepts every export (what a collector's receiver does)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# Each step's durations in the ``default`` variant, from the instruments' in-process listener.
STEPS: dict[str, list[float]] = defaultdict(list)


@asynccontextmanager
async def _variant(
    name: str, settings: Settings, registry: ToolRegistry, work: Path, collector: _Collector
) -> AsyncIterator[Call]:
    """One gateway over the shared tools, instrumented as ``name`` says."""
    metered = name in ("metrics", "default", "all")
    counted = name in ("counters", "default", "all")
    metrics = Metrics() if metered else SilentMetrics()
    async with AsyncExitStack() as stack:
        tracer = None
        if name == "spans":
            tracer = TracerProvider().get_tracer("bench")
        elif name in ("otlp", "all"):
            tracing = Tracing.from_settings(Settings(otlp_endpoint=collector.url))
            assert tracing is not None
            stack.callback(tracing.close)
            tracer = tracing.tracer
        policy = await stack.enter_async_context(PolicyClient(settings, metrics=metrics))
        store = await QueueStore.open(work / f"{name}.db")
        stack.push_async_callback(store.close)
        activity = None
        if counted:
            activity = ActivityLog(store.db, metrics=metrics)
            writer = asyncio.create_task(activity.run(settings.history_flush_seconds))
            stack.callback(writer.cancel)
        instruments = Instruments(metrics, tracer=tracer)
        if name == "default":
            instruments.listeners.append(lambda step, seconds: STEPS[step].append(seconds))
        gateway = Gateway(
            settings, registry, policy, store, store.audit, instruments=instruments, activity=activity
        )

        async def call() -> Any:
            outcome = await gateway.call("k8s_get", ARGS, SRE, session="bench-session")
            if outcome.status != "executed":
                raise RuntimeError(f"k8s_get was not allowed in {name}: {outcome}")
            return outcome

        yield call


Results = dict[str, tuple[list[float], float, float]]


async def _measure(calls: int, variants: dict[str, Call]) -> Results:
    """Latencies, wall time and this process's CPU time (every thread) per variant."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    wall = dict.fromkeys(variants, 0.0)
    cpu = dict.fromkeys(variants, 0.0)
    while len(samples["bare"]) < calls:
        for name, call in variants.items():
            block, block_cpu = time.perf_counter(), time.process_time()
            for _ in range(BLOCK):
                started = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - started)
            wall[name] += time.perf_counter() - block
            cpu[name] += time.process_time() - block_cpu
    return {name: (samples[name], wall[name], cpu[name]) for name in variants}


def _report(results: Results) -> None:
    base, base_wall, base_cpu = results["bare"]
    b50, b99, bmean = percentile(base, 0.5), percentile(base, 0.99), statistics.fmean(base)
    brate, bcpu = len(base) / base_wall, base_cpu / len(base)
    head = ("variant", "p50 ms", "mean ms", "p99 ms", "calls/s", "CPU ms")
    print("{:<9} {:>7} {:>7} {:>7} {:>7} {:>7}   ratios to bare".format(*head))
    print("{:<42}   {:>5} {:>5} {:>5} {:>5} {:>5}".format("", "p50", "mean", "p99", "c/s", "CPU"))
    for name, (samples, wall, cpu) in results.items():
        p50, p99, mean = percentile(samples, 0.5), percentile(samples, 0.99), statistics.fmean(samples)
        rate, per_call = len(samples) / wall, cpu / len(samples)
        figures = (p50 * 1e3, mean * 1e3, p99 * 1e3, rate, per_call * 1e3)
        ratios = (p50 / b50, mean / bmean, p99 / b99, rate / brate, per_call / bcpu)
        print(
            "{:<9} {:7.2f} {:7.2f} {:7.2f} {:7.0f} {:7.2f}".format(name, *figures)
            + "   {:5.2f} {:5.2f} {:5.2f} {:5.2f} {:5.2f}".format(*ratios)
        )
    steps = ", ".join(f"{step} {statistics.fmean(STEPS[step]) * 1e3:.2f}" for step in STAGES if STEPS[step])
    print(f"default, mean ms per step: {steps}; whole call {statistics.fmean(STEPS['call']) * 1e3:.2f}")
    for name in ("default", "all"):
        samples, _, cpu = results[name]
        print(
            f"{name} adds {(statistics.fmean(samples) - bmean) * 1e3:+.2f} ms mean, "
            f"{(cpu / len(samples) - bcpu) * 1e3:+.2f} ms CPU per call"
        )


def _per_call(work: Callable[[], None], rounds: int) -> float:
    """CPU seconds per run of ``work`` (the median of five batches)."""

    def batch() -> float:
        started = time.process_time()
        for _ in range(rounds):
            work()
        return (time.process_time() - started) / rounds

    return statistics.median(batch() for _ in range(5))


def _seam(instruments: Instruments) -> Callable[[], None]:
    """What the pipeline asks of the instruments in one allowed read: a call, its steps,
    its annotations and its reasons."""

    def call() -> None:
        with instruments.call("k8s_get"):
            for step in ("admit", "history", "prepare", "decide", "audit", "execute", "redact", "reply"):
                with instruments.stage(step):
                    pass
            instruments.annotate(action_id="a", effect="read", outcome="allow", bundle_revision="r")
            instruments.metrics.record_violations([])

    return call


def _micro() -> None:
    """The instrumentation's own CPU cost per call, outside the noise of a whole call."""
    tracing = Tracing.batched(_NullExporter(), Settings())
    counter = Metrics()
    costs = {
        "seam, metrics only (tracing off)": _per_call(_seam(Instruments(Metrics())), 2000),
        "seam, metrics + spans (batched, exported nowhere)": _per_call(
            _seam(Instruments(Metrics(), tracer=tracing.tracer)), 2000
        ),
        "backend request counter, per request": _per_call(
            lambda: counter.record_backend_request("kubernetes", "get", 200, 0.001), 2000
        ),
    }
    tracing.close(1.0)
    for what, seconds in costs.items():
        print(f"  {what}: {seconds * 1e6:.1f} µs CPU")


async def _activity_cost(work: Path) -> None:
    store = await QueueStore.open(work / "micro.db")
    try:
        log = ActivityLog(store.db)
        for _ in range(500):
            log.record("bench", "s", "read")
        await log.flush()
        rounds, started = 1000, time.process_time()
        for _ in range(rounds):
            await log.history("bench", "s")
        read = (time.process_time() - started) / rounds
        started = time.process_time()
        for i in range(rounds):
            log.record("bench", "s", "read")
            if i % 10 == 9:  # a batch every 10 calls, as at 100 calls/s
                await log.flush()
        write = (time.process_time() - started) / rounds
    finally:
        await store.close()
    print(
        f"  runaway counts, read per call: {read * 1e6:.1f} µs CPU; recorded and written in batches: "
        f"{write * 1e6:.1f} µs CPU per call"
    )


async def run(calls: int, bundle: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp_name:
        tmp = Path(tmp_name)
        if bundle is None:
            bundle = build_bundle(ROOT / "rego", tmp / "b.tar.gz", revision="bench")
        opa = OpaServer(bundle, log_path=tmp / "opa.log")
        kube = KubeApiServer(tmp / "kube")
        collector = _Collector()
        try:
            opa.start()
            kube.start()
            seed_sandbox(kube.kubeconfig_path, nodes_within=None)
            settings = Settings(
                opa_url=opa.url, kubeconfig=kube.kubeconfig_path, kube_context="sandbox", db_path=tmp / "x.db"
            )
            async with AsyncExitStack() as stack:
                registry = ToolRegistry()
                registry.extend(await stack.enter_async_context(open_backend(settings)))
                variants = {
                    name: await stack.enter_async_context(_variant(name, settings, registry, tmp, collector))
                    for name in VARIANTS
                }
                for _ in range(20):  # warm-up: connections, caches, lazy imports
                    for call in variants.values():
                        await call()
                print(
                    f"{calls} sequential gated reads (k8s_get) per variant, in interleaved blocks of {BLOCK}"
                )
                STEPS.clear()
                _report(await _measure(calls, variants))
            print("the instrumentation alone (this process, no I/O but the database's own):")
            _micro()
            await _activity_cost(tmp)
        finally:
            collector.server.shutdown()
            kube.stop()
            opa.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--bundle", type=Path, default=None, help="a built bundle (default: build rego/)")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.bundle))


if __name__ == "__main__":
    main()
