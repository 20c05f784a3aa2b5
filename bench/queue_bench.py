"""Benchmark: the approval queue at 100,000 rows, on SQLite and on PostgreSQL in one run.

Fills a fresh database per backend (``--backends``: SQLite in WAL mode, and a real
PostgreSQL server started for the run, each with the gateway's own schema) with 100,000
parked actions, most of them terminal and ``--pending`` of them pending, plus three audit
records per action, then measures through ``QueueStore``:

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

Each is measured in ``--rounds`` rounds of ``--runs`` calls, the backends taking turns
within every round (which goes first alternates); p50 and p99 of every round are printed,
then PostgreSQL's figures as a ratio of SQLite's from the same rounds. Targets on a 2-core
machine, for either backend: list p99 <= 10 ms, approve p99 <= 5 ms, approve through the
API with signature verification p99 <= 20 ms, judged on the best round (exit 1 if every
round missed).

    .venv/bin/python -m bench.queue_bench [--rows 100000] [--pending 3000] [--runs 500] [--rounds 3]
        [--backends sqlite,postgresql]
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
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
from gateway.local.postgres import PostgresServer
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


_ACTION_COLUMNS = (
    "id, state, tool, call_json, fingerprint, decision_json, bundle_revision, decision_id, requester, "
    "requester_json, target_json, min_approvals, created_at, updated_at, expires_at"
)
_AUDIT_COLUMNS = "seq, time, kind, action_id, tool, target, reasons, detail, prev_hash, hash"


async def _fill(target: Path | str, rows: int, pending: int) -> list[str]:
    """Create the schema with the gateway's own migrations, then bulk-load rows."""
    await (await Database.open(target)).close()
    actions, audit, pending_ids = _rows(rows, pending)
    if isinstance(target, Path):
        with sqlite3.connect(target) as conn:
            conn.executemany(
                f"INSERT INTO actions ({_ACTION_COLUMNS}) VALUES ({', '.join('?' * 15)})", actions
            )
            conn.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 10)})", audit)
            conn.execute("ANALYZE")
        return pending_ids
    conn = await asyncpg.connect(target)
    try:
        await conn.copy_records_to_table("actions", records=actions, columns=_ACTION_COLUMNS.split(", "))
        await conn.copy_records_to_table("audit", records=audit, columns=_AUDIT_COLUMNS.split(", "))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return pending_ids


def _rows(rows: int, pending: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[str]]:
    """The same kind of rows for both backends: actions, three audit records each, pending ids."""
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
            # Hashes of the bulk rows are placeholders: an append reads only the newest row.
            seq = len(audit) + 1
            audit.append(
                (
                    seq,
                    stamp,
                    kind,
                    action_id,
                    "k8s_scale",
                    target_json,
                    "[]",
                    "{}",
                    "0" * 64,
                    rng.randbytes(32).hex(),
                )
            )
    return actions, audit, pending_ids


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
async def _approvals_api(
    target: Path | str, tmp: Path, opa: OpaServer
) -> AsyncIterator[tuple[httpx.AsyncClient, Ed25519PrivateKey]]:
    """The gateway serving HTTP over one bench database, with OPA, bob's token and his key."""
    for noisy in ("httpx", "mcp", "gateway", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    (tmp / "allowed_signers").write_text(f"bob {public}\n")
    token = append_token(tmp / "tokens.jsonl", subject="bob", groups=("sre",))
    settings = Settings(
        db_path=target if isinstance(target, Path) else tmp / "unused.db",
        database_url=target if isinstance(target, str) else None,
        queue_keys_file=tmp / "queue.keys",
        attestation_key_file=tmp / "attestation.key",
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


@contextlib.contextmanager
def _bench_opa(tmp: Path) -> Iterator[OpaServer]:
    """OPA serving the small quorum-of-two policy the API approvals are judged by."""
    rego = tmp / "rego"
    rego.mkdir()
    (rego / "bench.rego").write_text(_POLICY)
    opa = OpaServer(build_bundle(rego, tmp / "bench.tar.gz", revision="bench"), log_path=tmp / "opa.log")
    opa.start()
    try:
        yield opa
    finally:
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


@dataclass
class _Side:
    """One backend's store, gateway and ids, and the operations measured on it."""

    name: str
    store: QueueStore
    http: httpx.AsyncClient
    key: Ed25519PrivateKey
    direct: Iterator[str]
    api: Iterator[str]

    async def approve_next(self, timings: list[float]) -> None:
        action = await self.store.get(next(self.direct))
        stamp = format_time(datetime.now(UTC))
        approval = Approval(subject="bob", groups=("sre",), approved_at=stamp, reason="bench")
        start = time.perf_counter()
        updated = await self.store.record_approval(action, approval, BOB, _decision("allow"))
        timings.append((time.perf_counter() - start) * 1000)
        assert updated.state is ActionState.APPROVED

    async def approve_through_api(self, timings: dict[str, list[float]]) -> None:
        action_id = next(self.api)
        start = time.perf_counter()
        offered = await self.http.post(f"/api/v1/actions/{action_id}/statement", json={"reason": "bench"})
        timings["api statement"].append((time.perf_counter() - start) * 1000)
        assert offered.status_code == 200, offered.text
        statement = offered.json()["statement"]
        body = {"statement": statement, "signature": sign(statement, self.key)}
        start = time.perf_counter()
        resp = await self.http.post(f"/api/v1/actions/{action_id}/approve", json=body)
        timings["api approve"].append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.text
        assert resp.json()["state"] == "pending"


_EVENT = AuditEvent(
    kind="decision",
    tool="k8s_get",
    subject="alice",
    transport="stdio",
    target={"cluster": "prod-eu", "namespace": "payments", "kind": "Deployment", "name": "api"},
    outcome="allow",
    fingerprint="ab" * 32,
)
_OPERATIONS = ("list pending", "claimable", "approve", "api statement", "api approve", "audit append")


async def run(rows: int, pending: int, runs: int, rounds: int, backends: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            sides = [await _side(Path(tmp) / name, name, stack, rows, pending) for name in backends]
            return await _rounds(sides, runs, rounds, pending // 2)


async def _side(tmp: Path, name: str, stack: contextlib.AsyncExitStack, rows: int, pending: int) -> _Side:
    """One backend filled, its store open, and a gateway serving the approvals API over it."""
    await asyncio.to_thread(tmp.mkdir)
    target: Path | str = tmp / "gateway.db"
    if name == "postgresql":
        server = stack.enter_context(PostgresServer())
        target = server.url()
    started = time.perf_counter()
    pending_ids = await _fill(target, rows, pending)
    print(f"{name}: filled {rows:,} actions ({pending:,} pending), {3 * rows:,} audit rows "
          f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
    opa = stack.enter_context(_bench_opa(tmp))
    http, key = await stack.enter_async_context(_approvals_api(target, tmp / "api", opa))
    store = await QueueStore.open(target)
    stack.push_async_callback(store.close)
    # As in the gateway process: the executor checkpoints SQLite's WAL between its passes.
    await store.db.defer_checkpoints()
    checkpointer = asyncio.create_task(_checkpoints(store))
    stack.callback(checkpointer.cancel)
    half = len(pending_ids) // 2
    return _Side(name, store, http, key, iter(pending_ids[:half]), iter(pending_ids[half:]))


# Long on purpose: every operation of every backend is measured in the same interleaved
# rounds, so each round's figures share the machine's load.
async def _rounds(sides: list[_Side], runs: int, rounds: int, pending_each: int) -> int:
    results: dict[tuple[str, str], list[list[float]]] = {
        (s.name, op): [] for s in sides for op in _OPERATIONS
    }
    per_round = min(runs, pending_each // rounds)
    for number in range(rounds):
        for side in sides if number % 2 == 0 else list(reversed(sides)):
            store = side.store
            results[side.name, "list pending"].append(
                await _measure(
                    runs, lambda s=store: s.list_actions(state=ActionState.PENDING, limit=DEFAULT_LIST_LIMIT)
                )
            )
            results[side.name, "claimable"].append(await _measure(runs, store.claimable))
            timings: list[float] = []
            for _ in range(per_round):
                await side.approve_next(timings)
            results[side.name, "approve"].append(timings)
            api: dict[str, list[float]] = {"api statement": [], "api approve": []}
            for _ in range(per_round):
                await side.approve_through_api(api)
            for name, values in api.items():
                results[side.name, name].append(values)
            results[side.name, "audit append"].append(
                await _measure(runs, lambda s=store: s.audit.record(_EVENT))
            )
    return _report(results, [s.name for s in sides])


def _report(results: dict[tuple[str, str], list[list[float]]], backends: list[str]) -> int:
    """Every round's p50/p99, and the best round judged against the target: on a shared
    machine, other processes only ever add latency, so the quietest round is the code's."""
    header = f"{'p50 ms (rounds)':>24} {'p99 ms (rounds)':>24} {'best p99':>9} {'ops/s':>7} {'target':>8}"
    print(f"\n  {'operation':<14} {'backend':<10} {'runs':>6} {header}")
    missed = []
    for operation in _OPERATIONS:
        for backend in backends:
            rounds = results[backend, operation]
            p50s = [statistics.median(r) for r in rounds]
            p99s = [_percentile(r, 99) for r in rounds]
            target = TARGETS_MS.get(operation)
            mark = f"{target:>6.1f}ms" if target else f"{'-':>8}"
            fifties = " ".join(f"{v:.2f}" for v in p50s)
            nineties = " ".join(f"{v:.2f}" for v in p99s)
            rate = max(len(r) / sum(r) * 1000 for r in rounds)
            cells = f"{fifties:>24} {nineties:>24} {min(p99s):>9.2f} {rate:>7.0f} {mark}"
            print(f"  {operation:<14} {backend:<10} {len(rounds[0]):>6} {cells}")
            if target is not None and min(p99s) > target:
                missed.append(
                    f"{operation} on {backend}: p99 {min(p99s):.2f} ms > {target} ms in every round"
                )
    print()
    for backend in backends:
        _ratios(
            results[backend, "api approve"], results[backend, "approve"], f"{backend}: api approve vs approve"
        )
    if {"sqlite", "postgresql"} <= set(backends):
        for operation in _OPERATIONS:
            pg, lite = results["postgresql", operation], results["sqlite", operation]
            _ratios(pg, lite, f"postgresql vs sqlite, {operation}")
    if missed:
        print("\nMISSED: " + "; ".join(missed), file=sys.stderr)
        return 1
    print("\nall targets met")
    return 0


def _ratios(ours: list[list[float]], base: list[list[float]], label: str) -> None:
    """``ours`` against ``base`` measured in the same rounds (interleaved), round by round."""
    parts = []
    for mine, theirs in zip(ours, base, strict=True):
        p50 = statistics.median(mine) / statistics.median(theirs)
        p99 = _percentile(mine, 99) / _percentile(theirs, 99)
        rate = (len(mine) / sum(mine)) / (len(theirs) / sum(theirs))
        parts.append(f"p50 x{p50:.1f}, p99 x{p99:.1f}, throughput x{rate:.2f}")
    print(f"  {label} (same rounds): " + " | ".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    options = parser.parse_args()
    backends = [b.strip() for b in options.backends.split(",") if b.strip()]
    if not backends or not set(backends) <= {"sqlite", "postgresql"}:
        parser.error("--backends takes sqlite and/or postgresql")
    return asyncio.run(run(options.rows, options.pending, options.runs, options.rounds, backends))


if __name__ == "__main__":
    sys.exit(main())
