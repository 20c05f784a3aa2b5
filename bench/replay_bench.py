"""Benchmark: policy replay throughput, and what recording and the shadow policy add to live calls.

Everything runs for real on this machine: OPA serving the project bundle, a gateway runtime
(``open_runtime``: policy client, SQLite queue and audit log, recorder, shadow evaluator)
over the in-memory tools of ``gateway.local.traffic`` (so a call costs what the gateway and
OPA cost, not a cluster), and a second OPA serving the candidate policy (rego/ with one
threshold and one mode changed) for the shadow and the replay.

1. **Live calls**: the varied mix at concurrency 1 and 8 in three configurations, rounds
   interleaved so the shared machine's drift hits each alike: ``baseline`` (recording off,
   no shadow), ``recording`` (the default), ``recording + shadow``. p50, p99, calls/s and
   ratios to the baseline of the same run; the shadow queue is drained after each round and
   the drain time reported (work the shadow did after the calls returned).
2. **Replay**: ``--actions`` decisions recorded through the gateway, replayed against the
   candidate with one OPA request per action and in batches (``evaluate_batch``), each at
   two concurrencies, rounds interleaved: actions/s and ratios to one-per-request.

    .venv/bin/python -m bench.replay_bench [--actions 10000] [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.db import Database
from gateway.local.candidate import prepare_candidate, serve_candidate
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.traffic import TrafficCall, TrafficCluster, traffic
from gateway.policy import PolicyClient
from gateway.records import DecisionRecords, RecordWindow
from gateway.replay import ReplayOptions, replay
from gateway.runtime import Runtime, open_runtime
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("baseline", "recording", "recording + shadow")
# Above the 0.5 s default: on a loaded machine a fail-closed deny (fast, unrecorded, not
# shadowed) would be measured as a call, and the recording would miss decisions.
OPA_TIMEOUT = 10.0


def candidate_policy(work: Path) -> Path:
    out = work / "candidate"
    shutil.copytree(ROOT / "rego", out)
    data = json.loads((out / "data.json").read_text())
    data["params"]["rules"]["change_limits"]["max_replicas"] = 20
    data["params"]["modes"]["no_latest_tag"] = "warn"
    (out / "data.json").write_text(json.dumps(data))
    return out


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class Cell:
    samples: list[float] = field(default_factory=list)
    wall: float = 0.0
    drain: float = 0.0

    def row(self) -> tuple[float, float, float]:
        return (
            statistics.median(self.samples) * 1000,
            percentile(self.samples, 0.99) * 1000,
            len(self.samples) / self.wall,
        )


async def timed_calls(runtime: Runtime, calls: list[TrafficCall], concurrency: int, cell: Cell) -> None:
    queue = list(calls)

    async def worker() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            await runtime.gateway.call(call.tool, call.args, call.principal)
            cell.samples.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cell.wall += time.perf_counter() - started
    if runtime.shadow is not None:
        drained = time.perf_counter()
        await runtime.shadow.drain()
        cell.drain += time.perf_counter() - drained
    if runtime.recorder is not None:
        await runtime.recorder.flush()


@asynccontextmanager
async def runtimes(work: Path, opa_url: str, shadow_url: str) -> AsyncIterator[dict[str, Runtime]]:
    async with AsyncExitStack() as stack:
        opened = {}
        for name in CONFIGS:
            settings = Settings(
                opa_url=opa_url,
                opa_timeout_seconds=OPA_TIMEOUT,
                db_path=work / name.replace(" ", "") / "gateway.db",
                record_decisions=name != "baseline",
                shadow_opa_url=shadow_url if "shadow" in name else None,
                shadow_queue_size=100_000,
            )
            opened[name] = await stack.enter_async_context(
                open_runtime(settings, [TrafficCluster().source()])
            )
        yield opened


async def live_calls(work: Path, opa_url: str, shadow_url: str, calls: int, rounds: int) -> None:
    mix = traffic(calls, seed=5)
    print(f"\n== live calls: the varied mix ({calls} calls per round), {rounds} rounds interleaved")
    async with runtimes(work, opa_url, shadow_url) as opened:
        for runtime in opened.values():  # warm-up: connections, OPA's caches
            await timed_calls(runtime, mix[:100], 4, Cell())
        for concurrency in (1, 8):
            cells = {name: Cell() for name in CONFIGS}
            for round_ in range(rounds):
                # The order rotates too, so no configuration always runs right after another's
                # background work (the shadow's drain, the recorder's flush).
                for name in CONFIGS[round_ % 3 :] + CONFIGS[: round_ % 3]:
                    await timed_calls(opened[name], mix, concurrency, cells[name])
            base50, base99, _ = cells["baseline"].row()
            print(f"\nconcurrency {concurrency}")
            header = ("configuration", "p50 ms", "p99 ms", "calls/s", "p50 x", "p99 x", "drain s")
            print("  {:<20} {:>7} {:>7} {:>8} {:>6} {:>6} {:>8}".format(*header))
            for name in CONFIGS:
                p50, p99, rate = cells[name].row()
                ratios = f"{p50 / base50:>6.2f} {p99 / base99:>6.2f}"
                print(f"  {name:<20} {p50:>7.2f} {p99:>7.2f} {rate:>8.0f} {ratios} {cells[name].drain:>8.2f}")
            shadow99 = cells["recording + shadow"].row()[1]
            record99 = cells["recording"].row()[1]
            added = f"recording {record99 - base99:+.2f} ms, the shadow {shadow99 - record99:+.2f} ms more"
            print(f"  added p99: {added}")
        for name in ("recording", "recording + shadow"):
            recorder = opened[name].recorder
            assert recorder is not None
            span = await DecisionRecords(opened[name].store.db).span()
            print(f"  {name}: {span.count} decisions recorded")


async def record(work: Path, opa_url: str, actions: int) -> Path:
    settings = Settings(
        opa_url=opa_url, opa_timeout_seconds=OPA_TIMEOUT, db_path=work / "recorded" / "gateway.db"
    )
    started = time.perf_counter()
    async with open_runtime(settings, [TrafficCluster().source()]) as runtime:
        await timed_calls(runtime, traffic(actions, seed=9), 8, Cell())
    wall = time.perf_counter() - started
    rate = actions / wall
    print(f"\n== replay: {actions} calls recorded through the gateway in {wall:.1f} s ({rate:.0f} calls/s)")
    return settings.db_path


async def replay_rounds(db_path: Path, candidate_url: str, rounds: int) -> None:
    db = await Database.open(db_path)
    try:
        records = DecisionRecords(db)
        total = (await records.span()).count
        settings = Settings(opa_url=candidate_url, opa_timeout_seconds=30)
        variants = {
            "1 per request, 2 in flight": ReplayOptions(batch_size=1, concurrency=2),
            "1 per request, 8 in flight": ReplayOptions(batch_size=1, concurrency=8),
            "batches of 50, 2 in flight": ReplayOptions(batch_size=50, concurrency=2),
            "batches of 50, 4 in flight": ReplayOptions(batch_size=50, concurrency=4),
        }
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        changed: dict[str, Any] = {}
        async with PolicyClient(settings) as client:
            for _ in range(rounds):
                for name, options in variants.items():
                    report = await replay(records, RecordWindow(), client, options=options)
                    assert report.evaluated == total, (report.evaluated, total, report.error_examples)
                    seconds[name].append(report.seconds)
                    changed[name] = report.changed
        print(f"{total} recorded decisions replayed against the candidate, {rounds} rounds interleaved")
        print(f"  {'variant':<28} {'median s':>9} {'actions/s':>10} {'x 1-per-request':>16} {'changed':>8}")
        base = statistics.median(seconds["1 per request, 2 in flight"])
        for name in variants:
            median = statistics.median(seconds[name])
            ratio = base / median
            print(f"  {name:<28} {median:>9.2f} {total / median:>10.0f} {ratio:>16.2f} {changed[name]:>8}")
    finally:
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=10_000, help="decisions recorded, then replayed")
    parser.add_argument("--calls", type=int, default=300, help="live calls per round and configuration")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bundle", type=Path, help="the serving bundle (default: build rego/ now)")
    options = parser.parse_args()
    # Disagreements are the point of the shadow here: counted, not printed.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("gateway.shadow").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = options.bundle or build_bundle(ROOT / "rego", work / "bundle.tar.gz", revision="bench")
        candidate = prepare_candidate(candidate_policy(work), work)
        serving = OpaServer(bundle, log_path=work / "opa.log")
        serving.start()
        try:
            with serve_candidate(candidate, log_path=work / "candidate.log") as shadow:
                asyncio.run(live_calls(work, serving.url, shadow.url, options.calls, options.rounds))
                db_path = asyncio.run(record(work, serving.url, options.actions))
                asyncio.run(replay_rounds(db_path, shadow.url, max(1, options.rounds // 2)))
        finally:
            serving.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
