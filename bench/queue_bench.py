"""Benchmark: the approval queue at 100,000 rows.

Fills a fresh SQLite database (WAL, the gateway's own schema) with 100,000 parked actions,
most of them terminal and ``--pending`` of them pending, plus three audit records per
action, then measures through ``QueueStore``:

- ``list pending``: ``list_actions(state=pending)`` with the CLI's default limit, the query
  behind ``gateway queue list --state pending``;
- ``approve``: ``record_approval`` of a pending action with an allow verdict, i.e. the
  guarded pending -> approved transition, the approval insert and the chained audit append
  in one ``BEGIN IMMEDIATE`` transaction (OPA excluded);
- ``claimable``: the executor's poll (a read that never takes the write lock);
- ``audit append``: one chained audit record in its own transaction (what the decision
  path adds to every tool call).

As in the gateway, automatic WAL checkpoints are deferred and a background task
checkpoints every ``DEFAULT_CHECKPOINT_SECONDS`` (the executor's job).

Each is measured in ``--rounds`` rounds of ``--runs`` calls; p50 and p99 of every round
are printed. Targets on a 2-core machine: list p99 <= 10 ms, approve p99 <= 5 ms, judged
on the best round (exit 1 if every round missed).

    .venv/bin/python -m bench.queue_bench [--rows 100000] [--pending 1500] [--runs 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.audit import format_time
from gateway.contracts import (
    Approval,
    ApprovalRequirement,
    Decision,
    PlannedCall,
    Principal,
    ProposedAction,
    Reason,
    Target,
    canonical_json,
)
from gateway.db import Database
from gateway.ports import ActionState, AuditEvent
from gateway.queue import DEFAULT_LIST_LIMIT, QueueStore
from gateway.queue.executor import DEFAULT_CHECKPOINT_SECONDS

ALICE = Principal(subject="alice", groups=("dev",), transport="stdio", authenticated=True)
BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
TERMINAL = ["succeeded"] * 70 + ["failed"] * 8 + ["denied"] * 8 + ["expired"] * 10 + ["cancelled"] * 4
TARGETS_MS = {"list pending": 10.0, "approve": 5.0}


def _call() -> PlannedCall:
    """A realistic k8s_scale call: a Deployment after- and before-image of a few KB."""
    container = {
        "name": "api",
        "image": "registry.example.com/payments/api:1.42.0",
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "env": [{"name": f"VAR_{i}", "value": f"value-{i}"} for i in range(8)],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "payments", "labels": {"app": "api", "tier": "backend"}},
        "spec": {"replicas": 6, "template": {"spec": {"containers": [container]}}},
    }
    action = ProposedAction(
        tool="k8s_scale",
        backend="kubernetes",
        operation="scale",
        effect="write",
        target=Target(
            cluster="prod-eu",
            namespace="payments",
            api_version="apps/v1",
            kind="Deployment",
            name="api",
            environment="production",
        ),
        args={"namespace": "payments", "name": "api", "replicas": 6},
        object=deployment,
        current={**deployment, "spec": {**deployment["spec"], "replicas": 3}},
        principal=ALICE,
    )
    return PlannedCall(tool="k8s_scale", call_args=dict(action.args), actions=(action,))


def _decision(outcome: str = "needs_approval") -> Decision:
    reason = Reason(
        code="K8S-PROD-001",
        rule="production_writes",
        severity="medium",
        effect="needs_approval",
        message="writes in production need an approval",
    )
    if outcome == "allow":
        return Decision(outcome="allow", bundle_revision="bench", decision_id="d")
    return Decision(
        outcome="needs_approval",
        reasons=[reason],
        approval=ApprovalRequirement(min_approvals=1, approver_groups=["sre"], ttl_seconds=3600),
        bundle_revision="bench",
        decision_id="d",
    )


async def _fill(path: Path, rows: int, pending: int) -> list[str]:
    """Create the schema with the gateway's own migrations, then bulk-load rows."""
    await (await Database.open(path)).close()
    template = _call()
    # One serialisation, ids swapped in: pydantic per row would dominate the fill.
    marker = template.id
    call_json = canonical_json(template.model_dump(mode="json"))
    decision_json = canonical_json(_decision().model_dump(mode="json"))
    requester_json = canonical_json(ALICE.model_dump(mode="json"))
    target_json = canonical_json(template.actions[0].target.model_dump(exclude_defaults=True))
    now = datetime.now(UTC)
    rng = random.Random(7)
    pending_at = set(rng.sample(range(rows), pending))
    pending_ids: list[str] = []
    actions, audit = [], []
    for n in range(rows):
        action_id = str(uuid.uuid4())
        created = now - timedelta(seconds=rng.uniform(60, 30 * 24 * 3600))
        state = "pending" if n in pending_at else rng.choice(TERMINAL)
        expires = (now + timedelta(hours=1)) if state == "pending" else created + timedelta(hours=1)
        fp = "0" * 64
        if state == "pending":
            pending_ids.append(action_id)
            fp = template.model_copy(update={"id": action_id}).fingerprint()
        actions.append(
            (
                action_id, state, template.tool, call_json.replace(marker, action_id), fp,
                decision_json, "bench", "d", "alice", requester_json, target_json, 1,
                format_time(created), format_time(created), format_time(expires),
            )
        )  # fmt: skip
        stamp = format_time(created)
        for kind in ("decision", "parked", "execution"):
            audit.append((stamp, kind, action_id, "k8s_scale", target_json, "[]", "{}", "0" * 64))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO actions (id, state, tool, call_json, fingerprint, decision_json, bundle_revision, "
            "decision_id, requester, requester_json, target_json, min_approvals, created_at, updated_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            actions,
        )
        # Hashes of the bulk rows are placeholders: an append reads only the newest row.
        conn.executemany(
            "INSERT INTO audit (time, kind, action_id, tool, target, reasons, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, lower(hex(randomblob(32))))",
            audit,
        )
        conn.execute("ANALYZE")
    return pending_ids


async def _checkpoints(store: QueueStore) -> None:
    while True:
        await asyncio.sleep(DEFAULT_CHECKPOINT_SECONDS)
        await store.db.checkpoint()


async def _measure(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(min(20, runs)):  # warm the page cache and the statement cache
        await call()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run(rows: int, pending: int, runs: int, rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        path = Path(tmp) / "gateway.db"
        started = time.perf_counter()
        pending_ids = await _fill(path, rows, pending)
        print(f"filled {rows:,} actions ({pending:,} pending), {3 * rows:,} audit rows "
              f"in {time.perf_counter() - started:.1f}s; {path.stat().st_size / 1e6:.0f} MB")  # fmt: skip
        with sqlite3.connect(path) as conn:
            plan = conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM actions WHERE state = 'pending' AND expires_at > '' "
                "ORDER BY created_at DESC LIMIT 50"
            ).fetchall()
        print("list query plan:", "; ".join(str(step[-1]) for step in plan))

        store = await QueueStore.open(path)
        # As in the gateway process: the executor checkpoints the WAL between its passes.
        await store.db.defer_checkpoints()
        checkpointer = asyncio.create_task(_checkpoints(store))
        queue = iter(pending_ids)
        verdict = _decision("allow")
        timings: list[float] = []

        async def approve_next() -> None:
            action = await store.get(next(queue))
            stamp = format_time(datetime.now(UTC))
            approval = Approval(subject="bob", groups=("sre",), approved_at=stamp, reason="bench")
            start = time.perf_counter()
            updated = await store.record_approval(action, approval, BOB, verdict)
            timings.append((time.perf_counter() - start) * 1000)
            assert updated.state is ActionState.APPROVED

        event = AuditEvent(
            kind="decision",
            tool="k8s_get",
            subject="alice",
            transport="stdio",
            target={"cluster": "prod-eu", "namespace": "payments", "kind": "Deployment", "name": "api"},
            outcome="allow",
            fingerprint="ab" * 32,
        )
        results: dict[str, list[list[float]]] = {
            "list pending": [],
            "claimable": [],
            "approve": [],
            "audit append": [],
        }
        per_round = min(runs, len(pending_ids) // rounds)
        try:
            for _ in range(rounds):
                results["list pending"].append(
                    await _measure(
                        runs, lambda: store.list_actions(state=ActionState.PENDING, limit=DEFAULT_LIST_LIMIT)
                    )
                )
                results["claimable"].append(await _measure(runs, store.claimable))
                timings = []
                for _ in range(per_round):
                    await approve_next()
                results["approve"].append(timings)
                results["audit append"].append(await _measure(runs, lambda: store.audit.record(event)))
        finally:
            checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpointer
            await store.close()
    return _report(results)


def _report(results: dict[str, list[list[float]]]) -> int:
    """Every round's p50/p99, and the best round judged against the target: on a shared
    machine, other processes only ever add latency, so the quietest round is the code's."""
    header = f"{'p50 ms (rounds)':>24} {'p99 ms (rounds)':>24} {'best p99':>9} {'target':>8}"
    print(f"\n  {'operation':<14} {'runs':>6} {header}")
    missed = []
    for name, rounds in results.items():
        p50s = [statistics.median(r) for r in rounds]
        p99s = [_percentile(r, 99) for r in rounds]
        target = TARGETS_MS.get(name)
        mark = f"{target:>6.1f}ms" if target else f"{'-':>8}"
        fifties = " ".join(f"{v:.2f}" for v in p50s)
        nineties = " ".join(f"{v:.2f}" for v in p99s)
        print(f"  {name:<14} {len(rounds[0]):>6} {fifties:>24} {nineties:>24} {min(p99s):>9.2f} {mark}")
        if target is not None and min(p99s) > target:
            missed.append(f"{name} p99 {min(p99s):.2f} ms > {target} ms in every round")
    if missed:
        print("\nMISSED: " + "; ".join(missed), file=sys.stderr)
        return 1
    print("\nall targets met")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=1_500)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    return asyncio.run(run(options.rows, options.pending, options.runs, options.rounds))


if __name__ == "__main__":
    sys.exit(main())
