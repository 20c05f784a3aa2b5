"""`gateway policy replay` against the real ``opa``: 1,000 varied calls recorded through a real
gateway (project bundle, both database backends), then replayed by the real CLI.

The candidate (``replay_support.candidate_policy``) changes one rule's threshold and one
rule's mode in a copy of rego/; what each recorded decision must become is derived without
asking the policy (``replay_support.expected_after``): the replay must report exactly those
transitions and nothing else.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from replay_support import CHANGE_CODE, REGO_DIR, STEADY, candidate_policy, expected_after, live_replicas
from storage_fixtures import BACKENDS, Backend, make_backend
from typer.testing import CliRunner

from gateway.cli import app
from gateway.contracts import Principal
from gateway.db import Database
from gateway.local.opa import OpaServer
from gateway.local.traffic import TrafficCall, TrafficCluster, traffic
from gateway.ports import ActionState
from gateway.queue import approve
from gateway.records import DecisionRecords, RecordedDecision
from gateway.runtime import open_runtime
from gateway.transitions import compare

pytestmark = pytest.mark.integration

CALLS = 1000
BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
CAROL = Principal(subject="carol", groups=("platform-admins",), transport="cli", authenticated=True)
runner = CliRunner()


@dataclass
class Recorded:
    """A database holding the decisions of ``CALLS`` calls, and each call by its id."""

    backend: Backend
    calls: dict[str, TrafficCall]
    approved: int


async def _record(backend: Backend, opa_url: str) -> Recorded:
    settings = backend.settings(opa_url=opa_url, **STEADY)
    cluster = TrafficCluster()
    by_id: dict[str, TrafficCall] = {}
    async with open_runtime(settings, [cluster.source()]) as runtime:
        slots = asyncio.Semaphore(4)

        async def one(call: TrafficCall) -> str | None:
            async with slots:
                outcome = await runtime.gateway.call(call.tool, call.args, call.principal)
            by_id[outcome.action_id] = call
            return outcome.action_id if outcome.status == "pending" else None

        parked = [p for p in await asyncio.gather(*(one(c) for c in traffic(CALLS))) if p]
        approved = 0
        for action_id in parked[:40]:
            result = await approve(runtime.store, runtime.policy, action_id, BOB)
            if result.action.state is ActionState.PENDING:  # a production delete wants two
                result = await approve(runtime.store, runtime.policy, action_id, CAROL)
            approved += result.action.state is ActionState.APPROVED
        for _ in range(200):  # the executor judges each again before it runs it
            if not await runtime.store.list_actions(state=ActionState.APPROVED):
                break
            await asyncio.sleep(0.1)
        assert runtime.recorder is not None
        await runtime.recorder.flush()
    return Recorded(backend, by_id, approved)


@pytest.fixture(scope="module", params=BACKENDS)
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, opa_server: OpaServer
) -> Iterator[Recorded]:
    backends = make_backend(request, request.param, tmp_path_factory.mktemp("replay"))
    backend = next(backends)
    try:
        yield asyncio.run(_record(backend, opa_server.url))
    finally:
        next(backends, None)


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return candidate_policy(tmp_path_factory.mktemp("candidate"))


def replay(recorded: Recorded, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["policy", "replay", *args], env=recorded.backend.environ())
    return result.exit_code, result.stdout, result.stderr


def read_records(backend: Backend) -> list[RecordedDecision]:
    async def work() -> list[RecordedDecision]:
        db = await Database.open(backend.target)
        try:
            return [r async for r in DecisionRecords(db).iterate() if isinstance(r, RecordedDecision)]
        finally:
            await db.close()

    return asyncio.run(work())


def expected_changes(recorded: Recorded) -> dict[int, str]:
    changes = {}
    for record in read_records(recorded.backend):
        assert record.call_id is not None
        call, live = recorded.calls[record.call_id], live_replicas(record.input)
        change = compare(record.decision, expected_after(record.decision, call, live=live))
        if change is not None:
            changes[record.seq] = change.label
    return changes


def test_the_recording_holds_every_decision_of_every_call_with_the_approvals_of_reevaluations(
    recorded: Recorded,
) -> None:
    records = read_records(recorded.backend)
    calls = [r for r in records if r.source == "call"]
    assert len(calls) == CALLS
    assert {r.call_id for r in calls} == set(recorded.calls)
    assert {r.tool for r in calls} == {"k8s_get", "k8s_list", "k8s_scale", "k8s_apply", "k8s_delete"}
    assert {r.decision.outcome for r in calls} == {"allow", "deny", "needs_approval"}
    assert len({r.subject for r in calls}) == 5
    assert len({r.target.get("environment") for r in calls}) == 3
    again = [r for r in records if r.source == "reevaluation"]
    assert recorded.approved >= 20
    assert len(again) >= 2 * recorded.approved  # the approve flow, then the executor
    assert all(r.input is not None and r.input["approvals"] for r in again)
    # Allowed once the quorum is met; a production delete still wants its second approver.
    assert {r.decision.outcome for r in again} == {"allow", "needs_approval"}


def test_replaying_the_serving_bundle_changes_nothing(recorded: Recorded, bundle_path: Path) -> None:
    code, out, err = replay(recorded, "--bundle", str(bundle_path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["evaluated"] == len(read_records(recorded.backend))
    assert (report["changed"], report["unchanged"]) == (0, report["evaluated"])
    assert report["skipped"]["corrupt"] == report["skipped"]["no_input"] == report["errors"] == 0
    # Re-evaluations stay allowed only because their approvals are fed in as recorded.
    assert report["recorded_revisions"] == {"test": report["evaluated"]}


def test_the_replay_reports_exactly_the_threshold_and_mode_transitions(
    recorded: Recorded, candidate: Path
) -> None:
    expected = expected_changes(recorded)
    # The mix exercises every kind of transition these two changes can cause.
    assert set(Counter(expected.values())) >= {
        "allow→deny",
        "needs_approval→deny",
        "deny→allow",
        "deny→needs_approval",
        "deny→deny (reasons changed)",
    }
    code, out, err = replay(recorded, "--bundle", str(candidate), "--json")
    assert code == 1, err
    report = json.loads(out)
    reported = {c["seq"]: c["transition"] for c in report["changes"]}
    assert reported == expected
    assert report["transitions"] == dict(Counter(expected.values()))
    assert report["unchanged"] == report["evaluated"] - len(expected)
    for change in report["changes"]:
        assert change["tool"] in ("k8s_scale", "k8s_apply")
        assert change["principal"]["subject"]
        assert change["target"]["name"]
        before, after = change["before"], change["after"]
        assert any(before[key] != after[key] for key in ("outcome", "reasons", "warnings", "dryrun"))


def test_the_text_report_counts_transitions_then_lists_each_changed_action(
    recorded: Recorded, candidate: Path
) -> None:
    code, out, _ = replay(recorded, "--bundle", str(candidate), "--tool", "k8s_scale")
    assert code == 1
    scales = {r.seq for r in read_records(recorded.backend) if r.tool == "k8s_scale"}
    expected = Counter(label for seq, label in expected_changes(recorded).items() if seq in scales)
    lines = out.splitlines()
    assert lines[0].startswith(f"replayed {len(scales)} recorded decision(s) about k8s_scale ")
    assert f"changed: {sum(expected.values())}" in out
    for label, count in expected.items():
        assert any(line.split() == [*label.split(), str(count)] for line in lines), label
    listed = lines[lines.index("changed actions:") + 1 :]
    assert len(listed) == 2 * sum(expected.values())
    assert all("k8s_scale" in line for line in listed[::2])
    assert all(CHANGE_CODE in line for line in listed[1::2])


def test_a_baseline_bundle_is_compared_instead_of_the_recorded_decisions(
    recorded: Recorded, candidate: Path
) -> None:
    code, out, err = replay(recorded, "--bundle", str(candidate), "--baseline", str(REGO_DIR), "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["against"] == "baseline"
    assert {c["seq"]: c["transition"] for c in report["changes"]} == expected_changes(recorded)
    code, out, err = replay(recorded, "--bundle", str(candidate), "--baseline", str(candidate))
    assert code == 0, err
    assert "changed: 0" in out


def test_a_window_without_records_is_an_error_unless_allowed(recorded: Recorded, bundle_path: Path) -> None:
    code, _, err = replay(recorded, "--bundle", str(bundle_path), "--since", "2020-01-01T00:00:00Z",
                          "--until", "2020-01-02T00:00:00Z")  # fmt: skip
    assert code == 2
    assert "nothing to replay: no recorded decisions between 2020-01-01T00:00:00.000000Z" in err
    assert f"the database holds {len(read_records(recorded.backend))} recorded decision(s)" in err
    code, _, err = replay(recorded, "--bundle", str(bundle_path), "--tool", "k8s_nothing", "--allow-empty")
    assert code == 0
    assert "no recorded decisions about k8s_nothing" in err


def test_a_bad_window_is_a_usage_error(recorded: Recorded, bundle_path: Path) -> None:
    code, _, err = replay(recorded, "--bundle", str(bundle_path), "--since", "last tuesday")
    assert code == 2
    assert "'last tuesday' is neither a duration" in err


def test_records_lists_the_newest_decisions_with_input_and_revision(recorded: Recorded) -> None:
    result = runner.invoke(
        app,
        ["policy", "records", "--tool", "k8s_apply", "--limit", "5", "--json"],
        env=recorded.backend.environ(),
    )
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(rows) == 5
    assert all(r["tool"] == "k8s_apply" and r["bundle_revision"] == "test" for r in rows)
    assert all(r["input"]["object"]["kind"] == "Deployment" for r in rows)
    assert [r["decided_at"] for r in rows] == sorted((r["decided_at"] for r in rows), reverse=True)
