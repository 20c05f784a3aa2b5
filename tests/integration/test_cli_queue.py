"""`gateway queue` end to end: the real CLI over a real database, approvals judged by real OPA."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from queue_harness import ALICE, TOOL, cli_env, gateway_stack, queue_opa, settings_for
from queue_support import needs_approval
from typer.testing import CliRunner

from gateway.cli import app
from gateway.contracts import PlannedCall, ProposedAction, Target
from gateway.local.opa import OpaServer
from gateway.local.process import free_port
from gateway.queue import QueueStore

pytestmark = pytest.mark.integration
_ = queue_opa

runner = CliRunner()


def park(db: Path, opa: OpaServer, policy: str = "one", line: str = "hello") -> str:
    async def work() -> str:
        async with gateway_stack(settings_for(db, opa, policy), db.with_suffix(".log")) as stack:
            outcome = await stack.gateway.call(TOOL, {"line": line}, ALICE, wait_seconds=0)
            return outcome.action_id

    return asyncio.run(work())


def gateway(
    db: Path, opa: OpaServer, *args: str, subject: str = "bob", policy: str = "one"
) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=cli_env(db, opa, policy, subject))
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_pending_actions_as_a_table_and_as_json(tmp_path: Path, queue_opa: OpaServer) -> None:
    db = tmp_path / "g.db"
    action_id = park(db, queue_opa)

    code, out, _ = gateway(db, queue_opa, "queue", "list")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "ID",
        "STATE",
        "TOOL",
        "TARGET",
        "REQUESTER",
        "APPROVALS",
        "EXPIRES",
    ]
    assert action_id[:8] in out
    assert "sandbox/payments ConfigMap log [production]" in out

    code, out, _ = gateway(db, queue_opa, "queue", "list", "--state", "pending", "--json")
    [row] = json.loads(out)
    assert (row["id"], row["state"], row["requester"], row["min_approvals"]) == (
        action_id,
        "pending",
        "alice",
        1,
    )

    code, out, _ = gateway(db, queue_opa, "queue", "list", "--state", "succeeded")
    assert (code, out.strip()) == (0, "no actions in state succeeded")


def test_show_redacts_secret_values_and_diffs_the_change(tmp_path: Path, queue_opa: OpaServer) -> None:
    db = tmp_path / "g.db"
    manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n"
    digest = "sha256:" + "ab" * 32
    action = ProposedAction(
        tool="k8s_apply",
        backend="kubernetes",
        operation="apply",
        effect="write",
        target=Target(cluster="sandbox", namespace="payments", api_version="v1", kind="Secret", name="db"),
        args={"manifest_sha256": "cd" * 32, "manifest_bytes": len(manifest), "documents": 1},
        object={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db"},
            "data": {"password": digest},
        },
        current=None,
        principal=ALICE,
    )
    call = PlannedCall(
        tool="k8s_apply", call_args={"manifest": manifest, "namespace": "payments"}, actions=(action,)
    )

    async def put() -> None:
        store = await QueueStore.open(db)
        await store.park(call, needs_approval(), ALICE)
        await store.close()

    asyncio.run(put())
    code, out, _ = gateway(db, queue_opa, "queue", "show", call.id[:6])
    assert code == 0
    assert "hunter2" not in out
    assert "password: <redacted>" in out
    assert "+++ after apply" in out
    assert "+kind: Secret" in out
    assert call.fingerprint() in out

    code, out, _ = gateway(db, queue_opa, "queue", "show", call.id, "--json")
    view = json.loads(out)
    assert "hunter2" not in out
    assert view["fingerprint"] == call.fingerprint()
    assert view["decision"]["reasons"][0]["code"] == "K8S-PROD-001"


def test_approve_records_the_configured_approver_and_the_action_becomes_approved(
    tmp_path: Path, queue_opa: OpaServer
) -> None:
    db = tmp_path / "g.db"
    action_id = park(db, queue_opa)

    code, out, _ = gateway(db, queue_opa, "queue", "approve", action_id, "--reason", "checked", "--json")
    assert code == 0
    body = json.loads(out)
    assert body["state"] == "approved"
    assert body["approver"] == "bob"
    assert [(a["subject"], a["groups"], a["reason"]) for a in body["approvals"]] == [
        ("bob", ["sre"], "checked")
    ]
    assert body["decision"]["outcome"] == "allow"
    assert body["decision"]["bundle_revision"] == "queuetest-1"

    code, _, err = gateway(db, queue_opa, "queue", "approve", action_id, subject="carol")
    assert code == 4
    assert "approved" in err


def test_refusals_have_distinct_exit_codes_and_change_nothing(tmp_path: Path, queue_opa: OpaServer) -> None:
    db = tmp_path / "g.db"
    action_id = park(db, queue_opa, policy="two")

    assert gateway(db, queue_opa, "queue", "approve", action_id, subject="alice")[0] == 1  # four-eyes
    assert gateway(db, queue_opa, "queue", "approve", "ffffffff-0000")[0] == 3  # unknown id
    assert gateway(db, queue_opa, "queue", "deny", action_id)[0] == 2  # --reason is required

    code, out, _ = gateway(db, queue_opa, "queue", "approve", action_id, policy="two")
    assert code == 0
    assert "still pending" in out
    assert "policy requires 2" in out
    code, _, err = gateway(db, queue_opa, "queue", "approve", action_id, policy="two")
    assert code == 1
    assert "already approved" in err

    dead = cli_env(db, queue_opa, "two", "carol") | {"GATEWAY_OPA_URL": f"http://127.0.0.1:{free_port()}"}
    result = runner.invoke(app, ["queue", "approve", action_id], env=dead)
    assert result.exit_code == 5
    assert "nothing was recorded" in result.stderr

    code, out, _ = gateway(db, queue_opa, "queue", "show", action_id, "--json")
    view = json.loads(out)
    assert view["state"] == "pending"
    assert [a["subject"] for a in view["approvals"]] == ["bob"]


def test_approving_under_a_policy_that_now_denies_denies_the_action(
    tmp_path: Path, queue_opa: OpaServer
) -> None:
    db = tmp_path / "g.db"
    action_id = park(db, queue_opa)
    code, _, err = gateway(db, queue_opa, "queue", "approve", action_id, policy="freeze")
    assert code == 1
    assert "denied" in err
    assert "change freeze" in err


def test_deny_and_cancel_are_final_and_recorded(tmp_path: Path, queue_opa: OpaServer) -> None:
    db = tmp_path / "g.db"
    first, second = park(db, queue_opa, line="a"), park(db, queue_opa, line="b")

    code, out, _ = gateway(db, queue_opa, "queue", "deny", first, "--reason", "not today", "--json")
    assert (code, json.loads(out)["state"]) == (0, "denied")
    assert gateway(db, queue_opa, "queue", "approve", first)[0] == 4
    assert gateway(db, queue_opa, "queue", "cancel", second)[0] == 0
    assert gateway(db, queue_opa, "queue", "cancel", second)[0] == 4

    code, out, _ = gateway(db, queue_opa, "audit", "list", "--json")
    kinds = [(r["kind"], r["subject"]) for r in json.loads(out)]
    assert ("denial", "bob") in kinds
    assert ("cancellation", "bob") in kinds


def test_a_missing_database_is_a_settings_error_not_an_empty_queue(
    tmp_path: Path, queue_opa: OpaServer
) -> None:
    code, _, err = gateway(tmp_path / "typo.db", queue_opa, "queue", "list")
    assert code == 2
    assert "no gateway database" in err
    assert not (tmp_path / "typo.db").exists()


def test_the_db_option_overrides_the_environment(tmp_path: Path, queue_opa: OpaServer) -> None:
    db = tmp_path / "g.db"
    action_id = park(db, queue_opa)
    env = cli_env(tmp_path / "elsewhere.db", queue_opa, "one", "bob")
    result = runner.invoke(app, ["queue", "list", "--json", "--db", str(db)], env=env)
    assert result.exit_code == 0
    assert [r["id"] for r in json.loads(result.stdout)] == [action_id]


def test_the_approvers_groups_may_be_given_comma_separated(tmp_path: Path, queue_opa: OpaServer) -> None:
    db = tmp_path / "g.db"
    action_id = park(db, queue_opa)
    env = cli_env(db, queue_opa, "one", "carol") | {"GATEWAY_GROUPS": "dev, sre"}
    result = runner.invoke(app, ["queue", "approve", action_id, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["approvals"][0]["groups"] == ["dev", "sre"]


def test_unusable_settings_are_a_usage_error_without_a_traceback(
    tmp_path: Path, queue_opa: OpaServer
) -> None:
    db = tmp_path / "g.db"
    park(db, queue_opa)
    env = cli_env(db, queue_opa, "one", "bob") | {
        "GATEWAY_GROUPS": "[not json",
        "GATEWAY_OPA_TIMEOUT_SECONDS": "-1",
    }
    result = runner.invoke(app, ["queue", "list"], env=env)
    assert result.exit_code == 2
    assert "invalid settings" in result.stderr
    assert "Traceback" not in result.output
