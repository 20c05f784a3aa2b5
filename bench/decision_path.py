"""Benchmark: the decision path alone (proposed action -> OPA -> validated decision).

Starts a real OPA serving the project bundle, then measures, in one run and with the same
``AsyncOpaClient`` (opa-python-client, the decision path's client):

- ``gateway``: ``PolicyClient.decide(action)``: serialise the action, ``query_rule`` under
  the end-to-end deadline, map errors, validate the decision field by field, attach
  provenance;
- ``raw OPA``: ``PolicyClient.query(input)``: the same ``query_rule`` call (same client,
  rule, parameters and input document, built once beforehand) and nothing else, the baseline
  nothing can beat.

at concurrency 1 and 16, printing p50, p99, decisions/s and the gateway's overhead over
the raw call. Targets on a 2-core machine: p50 <= 0.5 ms, p99 <= 2 ms, >= 1,500
decisions/s, overhead <= 20 %.

    .venv/bin/python -m bench.decision_path [--calls 4000] [--bundle bundles/gateway.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.contracts import Principal, ProposedAction, Target
from gateway.local.opa import OpaServer, build_bundle
from gateway.policy import PolicyClient
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

Call = Callable[[], Awaitable[Any]]


def _actions() -> dict[str, ProposedAction]:
    alice = Principal(subject="alice", groups=("sre",), transport="stdio", authenticated=True)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "dev", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.k8s.io/nginx:1.27.0",
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
                        }
                    ]
                },
            },
        },
    }
    current = {**deployment, "spec": {**deployment["spec"], "replicas": 2}}
    target = Target(
        cluster="sandbox",
        namespace="dev",
        api_version="apps/v1",
        kind="Deployment",
        name="web",
        environment="development",
    )
    return {
        "k8s_get (read)": ProposedAction(
            tool="k8s_get",
            backend="kubernetes",
            operation="get",
            effect="read",
            target=target,
            args={"kind": "Deployment", "name": "web", "namespace": "dev"},
            principal=alice,
        ),
        "k8s_scale (write)": ProposedAction(
            tool="k8s_scale",
            backend="kubernetes",
            operation="scale",
            effect="write",
            target=target,
            args={"kind": "Deployment", "name": "web", "namespace": "dev", "replicas": 3},
            object=deployment,
            current=current,
            principal=alice,
        ),
    }


async def _latencies(call: Call, calls: int, concurrency: int) -> tuple[list[float], float]:
    """Per-call latencies (seconds) and wall time for ``calls`` calls over ``concurrency`` workers."""
    samples: list[float] = []
    per_worker = calls // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def _summary(samples: list[float], wall: float) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return p50, p99, len(ordered) / wall


# The floor: a policy that answers a constant document, so OPA's evaluation costs next to
# nothing and what remains is HTTP on loopback plus the client.
_CONSTANT_POLICY = """package gateway

decision := {"outcome": "allow", "reasons": [], "obligations": {"redact": [], "max_log_lines": null}}
"""


async def _bench(opa_url: str, calls: int, actions: dict[str, ProposedAction]) -> int:
    settings = Settings(opa_url=opa_url, opa_timeout_seconds=5.0)
    failures = 0
    async with PolicyClient(settings) as client:
        for name, action in actions.items():
            document = action.as_input()

            async def gateway(action: ProposedAction = action) -> Any:
                return await client.decide(action)

            async def raw(document: dict[str, Any] = document) -> Any:
                return await client.query(document)

            decision = await client.decide(action)
            print(f"\n{name}: outcome {decision.outcome}, reasons {[r.code for r in decision.reasons]}")
            if any(r.code.startswith("GW-POLICY") for r in decision.reasons):
                print("  the decision path failed closed; figures would be meaningless", file=sys.stderr)
                return 1
            await _latencies(gateway, 300, 1)  # warm-up: connections, OPA's caches
            await _latencies(raw, 300, 1)
            evals = []
            for _ in range(300):
                # OPA's own timer: how much of the call is policy evaluation, which no client removes.
                answer = await client.query(document, metrics=True)
                evals.append(answer["metrics"]["timer_rego_query_eval_ns"] / 1e6)
            print(f"  OPA's own evaluation time: p50 {statistics.median(evals):.3f} ms")
            print(f"  {'':10} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'dec/s':>8}")
            for concurrency in (1, 16):
                # Alternate halves so drift on a shared machine hits both sides alike.
                gw: list[float] = []
                base: list[float] = []
                gw_wall = base_wall = 0.0
                for _ in range(2):
                    s, w = await _latencies(gateway, calls // 2, concurrency)
                    gw, gw_wall = gw + s, gw_wall + w
                    s, w = await _latencies(raw, calls // 2, concurrency)
                    base, base_wall = base + s, base_wall + w
                g50, g99, grate = _summary(gw, gw_wall)
                r50, r99, rrate = _summary(base, base_wall)
                print(f"  {'gateway':10} {concurrency:>4} {g50:>8.3f} {g99:>8.3f} {grate:>8.0f}")
                print(f"  {'raw OPA':10} {concurrency:>4} {r50:>8.3f} {r99:>8.3f} {rrate:>8.0f}")
                print(f"  {'overhead':10} {concurrency:>4} {100 * (g50 / r50 - 1):>7.1f}% (p50)")
                missed = [
                    label
                    for label, ok in (
                        ("p50 <= 0.5 ms", g50 <= 0.5),
                        ("p99 <= 2 ms", g99 <= 2.0),
                        ("overhead <= 20 %", g50 <= 1.2 * r50),
                        *((("> 1500 decisions/s", grate >= 1500),) if concurrency > 1 else ()),
                    )
                    if not ok
                ]
                verdict = "met" if not missed else "missed: " + ", ".join(missed)
                print(f"  {'targets':10} {concurrency:>4} {verdict}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per side and concurrency level")
    parser.add_argument("--bundle", type=Path, help="a built bundle (default: build rego/ now)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = options.bundle or build_bundle(ROOT / "rego", work / "bundle.tar.gz", revision="bench")
        (work / "constant" / "gateway").mkdir(parents=True)
        (work / "constant" / "gateway" / "decision.rego").write_text(_CONSTANT_POLICY)
        constant = build_bundle(work / "constant", work / "constant.tar.gz", revision="constant")
        status = 0
        for title, path, actions in (
            ("project bundle", bundle, _actions()),
            (
                "constant policy (client + HTTP floor)",
                constant,
                {"k8s_scale (write)": _actions()["k8s_scale (write)"]},
            ),
        ):
            opa = OpaServer(path, log_path=work / "opa.log")
            opa.start()
            try:
                print(f"\n== {title}: OPA {opa.url}, {options.calls} calls per cell")
                status |= asyncio.run(_bench(opa.url, options.calls, actions))
            finally:
                opa.stop()
        return status


if __name__ == "__main__":
    sys.exit(main())
