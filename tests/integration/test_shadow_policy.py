"""The shadow policy against real OPAs: every live decision judged again by a candidate,
counted exactly under concurrent calls, logged with both decisions; a full queue or a dead
shadow OPA is counted and changes nothing a caller gets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from replay_support import REGO_DIR, STEADY, candidate_policy, expected_after, live_replicas
from storage_fixtures import Backend

from gateway import shadow as shadow_module
from gateway.cli.serve import _with_shadow_opa
from gateway.errors import BundleError, ConfigError
from gateway.local.candidate import prepare_candidate, serve_candidate
from gateway.local.opa import OpaServer
from gateway.local.process import ManagedProcess, free_port, wait_until
from gateway.local.topology import Topology, TopologyConfig
from gateway.local.traffic import TrafficCall, TrafficCluster, traffic
from gateway.metrics import METRICS
from gateway.observation import DecisionContext
from gateway.outcome import CallOutcome
from gateway.policy import PolicyClient
from gateway.records import DecisionRecords, RecordedDecision
from gateway.runtime import open_runtime
from gateway.settings import Settings
from gateway.shadow import ShadowEvaluator
from gateway.transitions import Change, compare

pytestmark = pytest.mark.integration

GATEWAY_CLI = Path(sys.executable).with_name("gateway")
ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = ("allow", "deny", "needs_approval")


@pytest.fixture(scope="module")
def shadow_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    """An OPA serving the candidate, as `gateway serve` starts one for GATEWAY_SHADOW_BUNDLE."""
    work = tmp_path_factory.mktemp("shadow")
    bundle = prepare_candidate(candidate_policy(work), work)
    with serve_candidate(bundle, log_path=work / "opa.log") as server:
        yield server


def snapshot() -> Counter[tuple[str, ...]]:
    """The shadow series of the process-wide metrics, as counts by labels."""
    counts: Counter[tuple[str, ...]] = Counter()
    for result in ("agree", "disagree", "error", "dropped"):
        value = METRICS.registry.get_sample_value("gateway_shadow_evaluations_total", {"result": result})
        counts[("result", result)] = int(value or 0)
    for live in OUTCOMES:
        for shadow in OUTCOMES:
            labels = {"from": live, "to": shadow}
            value = METRICS.registry.get_sample_value("gateway_shadow_disagreements_total", labels)
            counts[("from", live, "to", shadow)] = int(value or 0)
    return counts


@dataclass(frozen=True)
class Ran:
    """A call of the mix, what the gateway answered, and the replicas running when it was
    judged (from its recorded input: concurrent scales change them)."""

    outcome: CallOutcome
    call: TrafficCall
    live: int | None

    def expected_change(self) -> Change | None:
        """How the candidate must differ from the live decision (``replay_support``)."""
        decision = self.outcome.decision
        if decision is None:
            return None
        return compare(decision, expected_after(decision, self.call, live=self.live))


async def run_calls(settings: Settings, count: int, concurrency: int = 16) -> list[Ran]:
    """``count`` calls of the varied mix, ``concurrency`` at a time, through a real runtime
    (recording on); waits until the shadow has judged everything queued."""
    cluster = TrafficCluster()
    async with open_runtime(settings, [cluster.source()]) as runtime:
        slots = asyncio.Semaphore(concurrency)

        async def one(call: TrafficCall) -> tuple[CallOutcome, TrafficCall]:
            async with slots:
                outcome = await runtime.gateway.call(call.tool, call.args, call.principal)
            return outcome, call

        done = await asyncio.gather(*(one(c) for c in traffic(count, seed=11)))
        if runtime.shadow is not None:
            await asyncio.wait_for(runtime.shadow.drain(), 60)
        assert runtime.recorder is not None
        await runtime.recorder.flush()
        live = {
            r.call_id: live_replicas(r.input)
            async for r in DecisionRecords(runtime.store.db).iterate()
            if isinstance(r, RecordedDecision)
        }
    return [Ran(outcome, call, live.get(outcome.action_id)) for outcome, call in done]


def test_disagreements_are_counted_exactly_under_concurrent_calls(
    opa_server: OpaServer, shadow_opa: OpaServer, backend: Backend
) -> None:
    settings = backend.settings(
        opa_url=opa_server.url, shadow_opa_url=shadow_opa.url, shadow_queue_size=1000, **STEADY
    )
    before = snapshot()
    done = asyncio.run(run_calls(settings, 300))
    delta = snapshot() - before

    expected: Counter[tuple[str, ...]] = Counter()
    for ran in done:
        assert ran.outcome.decision is not None
        change = ran.expected_change()
        if change is None:
            expected[("result", "agree")] += 1
        else:
            expected[("result", "disagree")] += 1
            expected[("from", change.before, "to", change.after)] += 1
    assert expected[("result", "disagree")] >= 30  # the mix disagrees often enough to count
    assert delta == expected


def test_the_live_outcome_is_the_same_with_the_shadow_on_off_or_dead(
    opa_server: OpaServer, shadow_opa: OpaServer, tmp_path: Path
) -> None:
    def outcomes(**shadow: object) -> list[tuple[str, str | None]]:
        backend = Backend("sqlite", tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
        backend.workdir.mkdir()
        done = asyncio.run(run_calls(backend.settings(opa_url=opa_server.url, **{**STEADY, **shadow}), 80))
        return [(r.outcome.status, r.outcome.decision.outcome if r.outcome.decision else None) for r in done]

    off = outcomes()
    before = snapshot()
    assert outcomes(shadow_opa_url=shadow_opa.url) == off
    dead = f"http://127.0.0.1:{free_port()}"
    assert outcomes(shadow_opa_url=dead, shadow_timeout_seconds=0.5) == off
    delta = snapshot() - before
    assert delta[("result", "error")] == 80  # every decision the dead shadow could not judge
    assert delta[("result", "agree")] + delta[("result", "disagree")] == 80


async def test_a_full_shadow_queue_drops_and_counts(opa_server: OpaServer, shadow_opa: OpaServer) -> None:
    settings = Settings(opa_url=opa_server.url, shadow_opa_url=shadow_opa.url, shadow_queue_size=5, **STEADY)
    calls = traffic(12, seed=3)
    cluster = TrafficCluster()
    specs = {spec.name: spec for spec in cluster.specs()}
    before = snapshot()
    async with PolicyClient(settings) as live, ShadowEvaluator(settings) as shadow:
        for call in calls:
            spec = specs[call.tool]
            args = spec.args.model_validate(call.args)
            planned = spec.plan(args, await spec.prepare(args), call.principal)
            decision = await live.evaluate(planned.actions[0])
            shadow.observe(planned.actions[0], decision, DecisionContext(call_id=planned.id, source="call"))
        worker = asyncio.create_task(shadow.run())  # the workers start only now: 7 were dropped
        await asyncio.wait_for(shadow.drain(), 30)
        shadow.stop()
        await asyncio.wait_for(worker, 10)
    delta = snapshot() - before
    assert delta[("result", "dropped")] == 7
    assert delta[("result", "agree")] + delta[("result", "disagree")] == 5


# A candidate that fails at evaluation on deletes: two values for one complete rule is a
# conflict error, and OPA fails the whole query (so a whole batch) that meets it.
CONFLICT_ON_DELETE = """package rules.boom

clash := 1 if input.tool == "k8s_delete"

clash := 2 if input.tool == "k8s_delete"

violation contains {"code": "BOOM-001", "message": "boom", "effect": "deny"} if clash == 1
"""


def test_a_decision_the_candidate_cannot_judge_is_an_error_and_its_batch_neighbours_are_judged(
    opa_server: OpaServer, tmp_path: Path
) -> None:
    source = candidate_policy(tmp_path)
    (source / "rules" / "boom").mkdir()
    (source / "rules" / "boom" / "boom.rego").write_text(CONFLICT_ON_DELETE)
    with serve_candidate(prepare_candidate(source, tmp_path), log_path=tmp_path / "opa.log") as failing:
        settings = Settings(
            opa_url=opa_server.url, shadow_opa_url=failing.url, db_path=tmp_path / "gateway.db", **STEADY
        )
        before = snapshot()
        done = asyncio.run(run_calls(settings, 200))
    delta = snapshot() - before
    deletes = sum(1 for ran in done if ran.call.tool == "k8s_delete")
    assert 0 < deletes < len(done)
    assert delta[("result", "error")] == deletes
    assert delta[("result", "agree")] + delta[("result", "disagree")] == len(done) - deletes


def logged_disagreements(
    opa_server: OpaServer, shadow_opa: OpaServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> tuple[list[str], list[Ran]]:
    """The disagreement lines logged while 60 calls ran one by one, and the calls that disagree."""
    settings = Settings(
        opa_url=opa_server.url, shadow_opa_url=shadow_opa.url, db_path=tmp_path / "gateway.db", **STEADY
    )
    with caplog.at_level(logging.WARNING, logger="gateway.shadow"):
        done = asyncio.run(run_calls(settings, 60, concurrency=1))
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.shadow"]
    changed = [ran for ran in done if ran.expected_change() is not None]
    return [line for line in lines if "disagrees" in line], changed


def test_a_disagreement_is_logged_with_both_decisions(
    opa_server: OpaServer,
    shadow_opa: OpaServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shadow_module, "_LOG_PER_SECOND", 10_000)
    lines, changed = logged_disagreements(opa_server, shadow_opa, tmp_path, caplog)
    assert changed
    assert len(lines) == len(changed)
    entry = json.loads(lines[0][lines[0].index("{") :])
    assert set(entry) >= {"transition", "tool", "call_id", "principal", "target", "live", "shadow"}
    assert (
        entry["live"]["outcome"] != entry["shadow"]["outcome"]
        or entry["live"]["reasons"] != (entry["shadow"]["reasons"])
    )
    assert entry["call_id"] in {ran.outcome.action_id for ran in changed}


def test_disagreement_lines_are_rate_limited_and_counted_all_the_same(
    opa_server: OpaServer,
    shadow_opa: OpaServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shadow_module, "_LOG_PER_SECOND", 1)
    before = snapshot()
    lines, changed = logged_disagreements(opa_server, shadow_opa, tmp_path, caplog)
    assert 1 <= len(lines) < len(changed)
    assert (snapshot() - before)[("result", "disagree")] == len(changed)


def test_the_series_are_exported_on_metrics() -> None:
    text = METRICS.render().decode()
    assert "# TYPE gateway_shadow_disagreements_total counter" in text
    assert re.search(r'gateway_shadow_evaluations_total\{result="dropped"\} \d', text)
    assert re.search(r'gateway_recorded_decisions_total\{result="recorded"\} \d', text)


def test_serve_starts_an_opa_for_the_shadow_bundle_and_stops_it(tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "gateway.db", shadow_bundle=REGO_DIR)
    with contextlib.ExitStack() as stack:
        served = _with_shadow_opa(settings, stack)
        assert served.shadow_opa_url is not None
        assert httpx.get(f"{served.shadow_opa_url}/health?bundles", timeout=5).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.shadow_opa_url}/health", timeout=2)
    assert (tmp_path / "shadow-opa.log").exists()

    both = settings.model_copy(update={"shadow_opa_url": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="GATEWAY_SHADOW_BUNDLE or GATEWAY_SHADOW_OPA_URL, not both"):
        _with_shadow_opa(both, contextlib.ExitStack())
    (tmp_path / "not-a-bundle.tar.gz").write_text("no")
    broken = settings.model_copy(update={"shadow_bundle": tmp_path / "not-a-bundle.tar.gz"})
    with pytest.raises(BundleError, match="is not a bundle"):
        _with_shadow_opa(broken, contextlib.ExitStack())


def test_gateway_serve_with_a_shadow_bundle_runs_both_and_stops_its_opa_on_sigterm(
    opa_server: OpaServer, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "GATEWAY_OPA_URL": opa_server.url,
        "GATEWAY_TRANSPORT": "http",
        "GATEWAY_PORT": str(port),
        "GATEWAY_DB_PATH": str(tmp_path / "gateway.db"),
        "GATEWAY_TOKENS_FILE": str(tmp_path / "tokens.jsonl"),
        "GATEWAY_KUBECONFIG": str(tmp_path / "no-cluster"),
        "GATEWAY_SHADOW_BUNDLE": str(REGO_DIR),
    }
    gateway = ManagedProcess([str(GATEWAY_CLI), "serve"], log_path=tmp_path / "gateway.log", env=env)
    gateway.start()
    try:
        wait_until(
            lambda: "shadow policy at http://127.0.0.1:" in gateway.tail(), timeout=60, what="the shadow"
        )
        shadow_url = re.search(r"shadow policy at (http://127\.0\.0\.1:\d+)", gateway.tail())
        assert shadow_url is not None
        assert httpx.get(f"{shadow_url.group(1)}/health?bundles", timeout=5).status_code == 200
        os.kill(gateway.pid, signal.SIGTERM)  # the gateway alone, not its group
        wait_until(lambda: not gateway.alive(), timeout=30, what="the gateway to stop")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{shadow_url.group(1)}/health", timeout=2)
    finally:
        gateway.stop()


def test_the_native_topology_runs_the_shadow_opa_and_points_the_gateway_at_it(
    bundle_path: Path, tmp_path: Path
) -> None:
    config = TopologyConfig(
        root=ROOT,
        state_dir=tmp_path / "state",
        opa_port=free_port(),
        gateway_port=free_port(),
        bundle=bundle_path,
        kubeconfig=tmp_path / "no-cluster",
        palette_configured=True,
        shadow_bundle=candidate_policy(tmp_path),
        shadow_opa_port=free_port(),
    )
    topology = Topology(config)
    assert topology.shadow is not None
    env = topology.gateway_env()
    assert env["GATEWAY_SHADOW_OPA_URL"] == topology.shadow.url
    assert env["GATEWAY_SHADOW_BUNDLE"] == ""  # the gateway must not start a second one
    topology.start(timeout=120)
    try:
        assert httpx.get(f"{topology.shadow.url}/health?bundles", timeout=5).status_code == 200
        assert f"shadow   OPA {topology.shadow.url}" in topology.summary()
        assert f"shadow policy at {topology.shadow.url}" in topology.gateway.tail(200)
        metrics = httpx.get(f"{topology.gateway_url}/metrics", timeout=5).text
        assert "gateway_shadow_evaluations_total" in metrics
    finally:
        topology.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{topology.shadow.url}/health", timeout=2)
