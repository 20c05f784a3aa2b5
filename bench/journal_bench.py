"""Benchmark: what the reversal journal adds to an executed write, on SQLite.

Every executed write already appends one chained audit record (``execution``) in its own
transaction; the journal adds one more transaction that seals and stores the call and its
changes. This measures, through the gateway's own ``QueueStore`` on a journal already
holding ``--rows`` entries:

- ``audit append`` (the baseline): one chained audit record in its own transaction;
- ``journal record``: one executed ``k8s_apply`` of a Deployment journaled: the judged call
  and the change (before- and after-images as the API returns them, managedFields included,
  about 8 KB) sealed with AES-256-GCM and inserted;
- ``journal find``: what a rollback reads before it touches a cluster: resolve the id,
  open the sealed columns, parse the record.

``--rounds`` rounds of ``--runs`` calls each, the three taking turns within a round (the
order rotates); p50 and p99 per round, then each as a ratio of ``audit append`` from the
same round.

    .venv/bin/python -m bench.journal_bench [--rows 10000] [--runs 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.changes import Change
from gateway.contracts import Decision, PlannedCall, Principal, ProposedAction, Target
from gateway.ports import AuditEvent
from gateway.queue.sealing import Sealer, new_key_line
from gateway.queue.store import QueueStore
from gateway.settings import Settings

ALICE = Principal(subject="alice", groups=("sre",), transport="http", authenticated=True)
TARGET = Target(cluster="sandbox", namespace="dev", api_version="apps/v1", kind="Deployment", name="web")
ALLOW = Decision(outcome="allow")


def _deployment(version: str) -> dict[str, Any]:
    """A Deployment as the API returns it, managedFields and status included (~4 KB)."""
    container = {"name": "web", "image": f"registry.example.com/web:{version}", "env": [
        {"name": f"VAR_{i}", "value": f"value-{i}"} for i in range(20)]}  # fmt: skip
    fields = {f"f:VAR_{i}": {} for i in range(40)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "dev",
            "uid": "7c1b9e55-0000-4000-8000-000000000001",
            "resourceVersion": "41",
            "generation": 3,
            "labels": {"app": "web", "tier": "front"},
            "managedFields": [
                {"manager": "policy-gateway", "operation": "Apply", "fieldsV1": {"f:spec": fields}}
            ],
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [container]}}},
        "status": {
            "replicas": 3,
            "readyReplicas": 3,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


def _call() -> tuple[PlannedCall, list[Change]]:
    before, after = _deployment("1.0"), _deployment("1.1")
    action = ProposedAction(
        tool="k8s_apply", backend="kubernetes", operation="apply", effect="write", target=TARGET,
        args={"manifest_sha256": "0" * 64, "documents": 1}, object=after, current=before, principal=ALICE,
    )  # fmt: skip
    call = PlannedCall(tool="k8s_apply", call_args={"manifest": "…"}, actions=(action,))
    change = Change(index=0, kind="updated", backend="kubernetes", target=TARGET, before=before, after=after,
                    written={"spec": after["spec"]})  # fmt: skip
    return call, [change]


async def _timed(work: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def _run(rows: int, runs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp:
        keys = Path(tmp) / "queue.keys"
        keys.write_text(new_key_line("k1") + "\n")
        sealer = Sealer.from_settings(Settings(queue_keys_file=keys), create=False)
        store = await QueueStore.open(Path(tmp) / "gateway.db", sealer=sealer)
        await store.db.defer_checkpoints()
        try:
            for _ in range(rows):
                call, changes = _call()
                await store.journal.record(call, changes, ALLOW, complete=True)
            known, _ = _call()
            await store.journal.record(known, _call()[1], ALLOW, complete=True)
            event = AuditEvent(kind="execution", action_id=known.id, tool="k8s_apply", subject="alice")

            async def record() -> None:
                call, changes = _call()
                await store.journal.record(call, changes, ALLOW, complete=True)

            work: dict[str, Callable[[], Awaitable[Any]]] = {
                "audit append": lambda: store.audit.record(event),
                "journal record": record,
                "journal find": lambda: store.journal.find(known.id[:8]),
            }
            print(f"journal at {rows} rows, SQLite (WAL), {runs} calls per round; times in ms")
            for number in range(rounds):
                names = list(work)
                names = names[number % len(names) :] + names[: number % len(names)]
                measured = {name: await _timed(work[name], runs) for name in names}
                base = measured["audit append"]
                for name in work:
                    samples = measured[name]
                    ratio = (
                        f"  ({_p(samples, 50) / _p(base, 50):.2f}x / {_p(samples, 99) / _p(base, 99):.2f}x "
                        "audit append)"
                    )
                    p50, p99, rate = _p(samples, 50), _p(samples, 99), runs / (sum(samples) / 1000)
                    print(
                        f"round {number + 1}  {name:<15} p50 {p50:7.3f}  p99 {p99:7.3f}  {rate:8.0f}/s"
                        + ("" if name == "audit append" else ratio)
                    )
                await store.db.checkpoint()
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_run(args.rows, args.runs, args.rounds))


if __name__ == "__main__":
    main()
