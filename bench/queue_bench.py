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
  path adds to every tool call);
- ``api statement`` and ``api approve``: what ``gateway queue approve --key`` does through
  the running gateway's approvals API (uvicorn on loopback, bearer token, real OPA asked
  again with a small quorum-of-two policy so the action stays pending and the executor is
  idle): fetch the statement to sign, then post it with an SSH signature (Ed25519, sshsig),
  which the gateway verifies against the allowed signers file before attesting, re-asking
  policy and recording it. Signing happens on the client and is not timed. The baseline is
  ``approve`` above, measured in the same rounds: ``api approve`` reports its ratio to it.

As in the gateway, automatic WAL checkpoints are deferred and a background task
checkpoints every ``DEFAULT_CHECKPOINT_SECONDS`` (the executor's job).

Each is measured in ``--rounds`` rounds of ``--runs`` calls; p50 and p99 of every round
are printed. Targets on a 2-core machine: list p99 <= 10 ms, approve p99 <= 5 ms, approve
through the API with signature verification p99 <= 20 ms, judged on the best round (exit 1
if every round missed).

    .venv/bin/python -m bench.queue_bench [--rows 100000] [--pending 1500] [--runs 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.audit import format_time
from gateway.auth import append_token
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
from gateway.http import build_app
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.process import free_port
from gateway.ports import ActionState, AuditEvent
from gateway.queue import DEFAULT_LIST_LIMIT, QueueStore
from gateway.queue.executor import DEFAULT_CHECKPOINT_SECONDS
from gateway.runtime import RuntimeSlot
from gateway.server import build_server
from gateway.settings import Settings
from gateway.signers import sign

ALICE = Principal(subject="alice", groups=("dev",), transport="stdio", authenticated=True)
BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
TERMINAL = ["succeeded"] * 70 + ["failed"] * 8 + ["denied"] * 8 + ["expired"] * 10 + ["cancelled"] * 4
TARGETS_MS = {"list pending": 10.0, "approve": 5.0, "api approve": 20.0}


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


_POLICY = """package queuebench

import rego.v1

requirement := {
\t"min_approvals": 2, "approver_groups": ["sre"],
\t"ttl_seconds": 3600, "allow_self_approval": false,
}

counted contains a.subject if {
\tsome a in input.approvals
\ta.subject != input.principal.subject
\t"sre" in a.groups
}

decision := {"outcome": "allow", "approval": requirement} if count(counted) >= 2

decision := {
\t"outcome": "needs_approval",
\t"reasons": [{"code": "B-1", "rule": "quorum", "severity": "medium", "effect": "needs_approval",
\t\t"message": "two approvals"}],
\t"approval": requirement,
} if count(counted) < 2
"""


@contextlib.asynccontextmanager
async def _approvals_api(path: Path, tmp: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Ed25519PrivateKey]]:
    """The gateway serving HTTP over the bench database, with OPA, bob's token and his key."""
    for noisy in ("httpx", "mcp", "gateway", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rego = tmp / "rego"
    rego.mkdir()
    (rego / "bench.rego").write_text(_POLICY)
    opa = OpaServer(build_bundle(rego, tmp / "bench.tar.gz", revision="bench"), log_path=tmp / "opa.log")
    opa.start()
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    (tmp / "allowed_signers").write_text(f"bob {public}\n")
    token = append_token(tmp / "tokens.jsonl", subject="bob", groups=("sre",))
    settings = Settings(
        db_path=path,
        opa_url=opa.url,
        decision_path="queuebench/decision",
        opa_timeout_seconds=5.0,
        transport="http",
        tokens_file=tmp / "tokens.jsonl",
        approval_signatures="required",
        allowed_signers_file=tmp / "allowed_signers",
    )
    slot = RuntimeSlot()
    app = build_app(build_server(settings, backends=[], slot=slot), settings, slot=slot)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, trust_env=False
        ) as http:
            yield http, key
    finally:
        server.should_exit = True
        await task
        opa.stop()


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
        async with contextlib.AsyncExitStack() as stack:
            return await _run_in(Path(tmp), stack, rows, pending, runs, rounds)


# Long on purpose: every operation is measured in the same interleaved rounds over one open
# store and one running gateway, so each round's figures share the machine's load.
async def _run_in(
    tmp: Path, stack: contextlib.AsyncExitStack, rows: int, pending: int, runs: int, rounds: int
) -> int:
    path = tmp / "gateway.db"
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

    direct_ids, api_ids = pending_ids[: len(pending_ids) // 2], pending_ids[len(pending_ids) // 2 :]
    http, key = await stack.enter_async_context(_approvals_api(path, tmp))
    api_queue = iter(api_ids)
    api_timings: dict[str, list[float]] = {"api statement": [], "api approve": []}

    async def approve_through_api() -> None:
        action_id = next(api_queue)
        start = time.perf_counter()
        offered = await http.post(f"/api/v1/actions/{action_id}/statement", json={"reason": "bench"})
        api_timings["api statement"].append((time.perf_counter() - start) * 1000)
        statement = offered.json()["statement"]
        body = {"statement": statement, "signature": sign(statement, key)}
        start = time.perf_counter()
        resp = await http.post(f"/api/v1/actions/{action_id}/approve", json=body)
        api_timings["api approve"].append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.text
        assert resp.json()["state"] == "pending"

    store = await QueueStore.open(path)
    # As in the gateway process: the executor checkpoints the WAL between its passes.
    await store.db.defer_checkpoints()
    checkpointer = asyncio.create_task(_checkpoints(store))
    queue = iter(direct_ids)
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
        "api statement": [],
        "api approve": [],
        "audit append": [],
    }
    per_round = min(runs, len(direct_ids) // rounds)
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
            for name in api_timings:
                api_timings[name] = []
            for _ in range(per_round):
                await approve_through_api()
            for name, values in api_timings.items():
                results[name].append(values)
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
    header = f"{'p50 ms (rounds)':>24} {'p99 ms (rounds)':>24} {'best p99':>9} {'ops/s':>7} {'target':>8}"
    print(f"\n  {'operation':<14} {'runs':>6} {header}")
    missed = []
    for name, rounds in results.items():
        p50s = [statistics.median(r) for r in rounds]
        p99s = [_percentile(r, 99) for r in rounds]
        target = TARGETS_MS.get(name)
        mark = f"{target:>6.1f}ms" if target else f"{'-':>8}"
        fifties = " ".join(f"{v:.2f}" for v in p50s)
        nineties = " ".join(f"{v:.2f}" for v in p99s)
        rate = max(len(r) / sum(r) * 1000 for r in rounds)
        cells = f"{fifties:>24} {nineties:>24} {min(p99s):>9.2f} {rate:>7.0f} {mark}"
        print(f"  {name:<14} {len(rounds[0]):>6} {cells}")
        if target is not None and min(p99s) > target:
            missed.append(f"{name} p99 {min(p99s):.2f} ms > {target} ms in every round")
    _ratios(results, "api approve", "approve")
    if missed:
        print("\nMISSED: " + "; ".join(missed), file=sys.stderr)
        return 1
    print("\nall targets met")
    return 0


def _ratios(results: dict[str, list[list[float]]], name: str, baseline: str) -> None:
    """``name`` against ``baseline`` measured in the same rounds (interleaved), round by round."""
    parts = []
    for ours, base in zip(results[name], results[baseline], strict=True):
        p50 = statistics.median(ours) / statistics.median(base)
        p99 = _percentile(ours, 99) / _percentile(base, 99)
        rate = (len(ours) / sum(ours)) / (len(base) / sum(base))
        parts.append(f"p50 x{p50:.1f}, p99 x{p99:.1f}, throughput x{rate:.2f}")
    print(f"\n  {name} vs {baseline} (same rounds): " + " | ".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    return asyncio.run(run(options.rows, options.pending, options.runs, options.rounds))


if __name__ == "__main__":
    sys.exit(main())
