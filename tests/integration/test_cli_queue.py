"""`gateway queue` end to end: the real CLI over a real database, approvals judged by real OPA."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_harness import ALICE, TOOL, api_env, api_gateway, cli_env, gateway_stack, queue_opa, settings_for
from queue_support import needs_approval, secret_apply_call
from storage_fixtures import Backend
from typer.testing import CliRunner

from gateway.auth import append_token
from gateway.cli import app
from gateway.local.opa import OpaServer
from gateway.local.process import free_port
from gateway.queue import QueueStore

pytestmark = pytest.mark.integration
_ = queue_opa

runner = CliRunner()


def park(db: Backend, opa: OpaServer, policy: str = "one", line: str = "hello") -> str:
    async def work() -> str:
        async with gateway_stack(settings_for(db, opa, policy), db.workdir / "g.log") as stack:
            outcome = await stack.gateway.call(TOOL, {"line": line}, ALICE, wait_seconds=0)
            return outcome.action_id

    return asyncio.run(work())


class Cli:
    """Runs `gateway ...` as an approver, through the approvals API of a real gateway serving
    HTTP (``api``: the identity is the bearer token's) or on the database (``local``: the
    identity is GATEWAY_SUBJECT / GATEWAY_GROUPS)."""

    def __init__(self, mode: str, tmp: Path, opa: OpaServer, stack: contextlib.ExitStack) -> None:
        self.mode, self.tmp, self.opa, self.stack = mode, tmp, opa, stack
        self.tokens_file = tmp / "tokens.jsonl"
        self._tokens: dict[tuple[str, tuple[str, ...]], str] = {}
        self._servers: dict[tuple[str, str, str], str] = {}

    def token(self, subject: str, groups: tuple[str, ...] = ("sre",)) -> str:
        if (subject, groups) not in self._tokens:
            self._tokens[subject, groups] = append_token(self.tokens_file, subject=subject, groups=groups)
        return self._tokens[subject, groups]

    def server(self, db: Backend, policy: str, opa_url: str | None = None) -> str:
        key = (str(db.target), policy, opa_url or self.opa.url)
        if key not in self._servers:
            settings = settings_for(db, self.opa, policy, transport="http", tokens_file=self.tokens_file)
            if opa_url is not None:
                settings = settings.model_copy(update={"opa_url": opa_url})
            served = self.stack.enter_context(api_gateway(settings, db.workdir / "g.api.log"))
            self._servers[key] = served.url
        return self._servers[key]

    def env(
        self, db: Backend, subject: str, policy: str, groups: tuple[str, ...], opa_url: str | None = None
    ) -> dict[str, str]:
        if self.mode == "local":
            env = cli_env(db, self.opa, policy, subject, groups)
            return env | ({"GATEWAY_OPA_URL": opa_url} if opa_url else {})
        url = self.server(db, policy, opa_url)
        return api_env(url, self.token(subject, groups), **db.env())

    def __call__(
        self,
        db: Backend,
        *args: str,
        subject: str = "bob",
        policy: str = "one",
        groups: tuple[str, ...] = ("sre",),
        opa_url: str | None = None,
    ) -> tuple[int, str, str]:
        extra = ["--local"] if self.mode == "local" and args[0] == "queue" else []
        result = runner.invoke(app, [*args, *extra], env=self.env(db, subject, policy, groups, opa_url))
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture(params=["api", "local"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path, queue_opa: OpaServer) -> Iterator[Cli]:
    with contextlib.ExitStack() as stack:
        yield Cli(request.param, tmp_path, queue_opa, stack)


def test_list_shows_pending_actions_as_a_table_and_as_json(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    action_id = park(db, queue_opa)

    code, out, _ = gateway(db, "queue", "list")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "ID",
        "STATE",
        "TOOL",
        "CLUSTER",
        "TARGET",
        "REQUESTER",
        "APPROVALS",
        "EXPIRES",
    ]
    assert action_id[:8] in out
    row = next(line for line in out.splitlines() if line.startswith(action_id[:8]))
    assert re.split(r"\s{2,}", row)[3:5] == ["sandbox", "payments ConfigMap log [production]"]

    code, out, _ = gateway(db, "queue", "list", "--state", "pending", "--json")
    [row] = json.loads(out)
    assert (row["id"], row["state"], row["requester"], row["min_approvals"]) == (
        action_id,
        "pending",
        "alice",
        1,
    )

    code, out, _ = gateway(db, "queue", "list", "--state", "succeeded")
    assert (code, out.strip()) == (0, "no actions in state succeeded")


def test_show_redacts_secret_values_and_diffs_the_change(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    call = secret_apply_call()

    async def put() -> None:
        store = await QueueStore.open(db.target)
        await store.park(call, needs_approval(), ALICE)
        await store.close()

    asyncio.run(put())
    code, out, _ = gateway(db, "queue", "show", call.id[:6])
    assert code == 0
    assert "hunter2" not in out
    assert "password: <redacted>" in out
    assert "+++ after apply" in out
    assert "+kind: Secret" in out
    assert call.fingerprint() in out
    assert "Cluster      sandbox\n" in out

    code, out, _ = gateway(db, "queue", "show", call.id, "--json")
    view = json.loads(out)
    assert "hunter2" not in out
    assert view["fingerprint"] == call.fingerprint()
    assert view["target"]["cluster"] == "sandbox"
    assert view["decision"]["reasons"][0]["code"] == "K8S-PROD-001"


def test_approve_records_the_approver_and_the_action_becomes_approved(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    action_id = park(db, queue_opa)

    code, out, _ = gateway(db, "queue", "approve", action_id, "--reason", "checked", "--json")
    assert code == 0
    body = json.loads(out)
    assert body["state"] == "approved"
    assert body["approver"] == "bob"
    assert [(a["subject"], a["groups"], a["reason"]) for a in body["approvals"]] == [
        ("bob", ["sre"], "checked")
    ]
    assert body["decision"]["outcome"] == "allow"
    assert body["decision"]["bundle_revision"] == "queuetest-1"

    code, _, err = gateway(db, "queue", "approve", action_id, subject="carol")
    assert code == 4
    # The API's gateway runs it at once; on the database alone it stays approved.
    assert any(state in err for state in ("is approved", "is executing", "is succeeded"))


def test_refusals_have_distinct_exit_codes_and_change_nothing(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    action_id = park(db, queue_opa, policy="two")

    assert gateway(db, "queue", "approve", action_id, subject="alice")[0] == 1  # four-eyes
    assert gateway(db, "queue", "approve", "ffffffff-0000")[0] == 3  # unknown id
    assert gateway(db, "queue", "deny", action_id)[0] == 2  # --reason is required

    code, out, _ = gateway(db, "queue", "approve", action_id, policy="two")
    assert code == 0
    assert "still pending" in out
    assert "policy requires 2" in out
    code, _, err = gateway(db, "queue", "approve", action_id, policy="two")
    assert code == 1
    assert "already approved" in err

    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = gateway(db, "queue", "approve", action_id, subject="carol", policy="two", opa_url=dead)
    assert code == 5
    assert "nothing was recorded" in err

    code, out, _ = gateway(db, "queue", "show", action_id, "--json")
    view = json.loads(out)
    assert view["state"] == "pending"
    assert [a["subject"] for a in view["approvals"]] == ["bob"]


def test_approving_under_a_policy_that_now_denies_denies_the_action(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    action_id = park(db, queue_opa)
    code, _, err = gateway(db, "queue", "approve", action_id, policy="freeze")
    assert code == 1
    assert "denied" in err
    assert "change freeze" in err


def test_deny_and_cancel_are_final_and_recorded(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    first, second = park(db, queue_opa, line="a"), park(db, queue_opa, line="b")

    code, out, _ = gateway(db, "queue", "deny", first, "--reason", "not today", "--json")
    assert (code, json.loads(out)["state"]) == (0, "denied")
    assert gateway(db, "queue", "approve", first)[0] == 4
    assert gateway(db, "queue", "cancel", second)[0] == 0
    assert gateway(db, "queue", "cancel", second)[0] == 4

    code, out, _ = gateway(db, "audit", "list", "--json")
    kinds = [(r["kind"], r["subject"]) for r in json.loads(out)]
    assert ("denial", "bob") in kinds
    assert ("cancellation", "bob") in kinds


def test_a_missing_database_is_a_settings_error_not_an_empty_queue(
    tmp_path: Path, queue_opa: OpaServer
) -> None:
    typo = Backend("sqlite", tmp_path / "typo")
    result = runner.invoke(app, ["queue", "list", "--local"], env=cli_env(typo, queue_opa, "one", "bob"))
    code, err = result.exit_code, result.stderr
    assert code == 2
    assert "no gateway database" in err
    assert not typo.db_path.exists()


@pytest.mark.postgres
def test_a_postgresql_database_without_the_gateways_tables_is_a_settings_error(
    postgres_backend: Backend, queue_opa: OpaServer
) -> None:
    result = runner.invoke(
        app, ["queue", "list", "--local"], env=cli_env(postgres_backend, queue_opa, "one", "bob")
    )
    assert result.exit_code == 2
    assert "holds no gateway tables" in result.stderr
    assert postgres_backend.execute_sync("SELECT to_regclass('actions') IS NULL") == [(True,)]


def test_the_db_option_overrides_the_environment(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    file = Backend("sqlite", tmp_path / "file")
    action_id = park(file, queue_opa)
    # whatever the environment names, SQLite elsewhere or a PostgreSQL database
    env = cli_env(backend, queue_opa, "one", "bob")
    result = runner.invoke(app, ["queue", "list", "--local", "--json", "--db", str(file.db_path)], env=env)
    assert result.exit_code == 0
    assert [r["id"] for r in json.loads(result.stdout)] == [action_id]


def test_local_approvers_groups_may_be_given_comma_separated(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer
) -> None:
    db = backend
    action_id = park(db, queue_opa)
    env = cli_env(db, queue_opa, "one", "carol") | {"GATEWAY_GROUPS": "dev, sre"}
    result = runner.invoke(app, ["queue", "approve", action_id, "--local", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["approvals"][0]["groups"] == ["dev", "sre"]


def test_unusable_settings_are_a_usage_error_without_a_traceback(
    tmp_path: Path, backend: Backend, queue_opa: OpaServer, gateway: Cli
) -> None:
    db = backend
    park(db, queue_opa)
    env = gateway.env(db, "bob", "one", ("sre",)) | {
        "GATEWAY_GROUPS": "[not json",
        "GATEWAY_OPA_TIMEOUT_SECONDS": "-1",
    }
    local = ["--local"] if gateway.mode == "local" else []
    result = runner.invoke(app, ["queue", "list", *local], env=env)
    assert result.exit_code == 2
    assert "invalid settings" in result.stderr
    assert "Traceback" not in result.output


# -- the approvals API's own guarantees ------------------------------------------------


@pytest.fixture
def api(tmp_path: Path, backend: Backend, queue_opa: OpaServer) -> Iterator[Cli]:
    with contextlib.ExitStack() as stack:
        yield Cli("api", tmp_path, queue_opa, stack)


def test_the_approver_is_the_tokens_principal_never_the_environments(
    tmp_path: Path, backend: Backend, api: Cli
) -> None:
    db = backend
    action_id = park(db, api.opa)
    env = api.env(db, "mallory", "one", ("dev",)) | {"GATEWAY_SUBJECT": "bob", "GATEWAY_GROUPS": "sre"}
    result = runner.invoke(app, ["queue", "approve", action_id], env=env)
    assert result.exit_code == 1
    assert "needs a member of: sre" in result.stderr
    _, out, _ = api(db, "queue", "show", action_id, "--json")
    assert json.loads(out)["approvals"] == []


def test_client_errors_name_what_is_wrong(tmp_path: Path, backend: Backend, api: Cli) -> None:
    db = backend
    park(db, api.opa)
    url = api.server(db, "one")
    base = api_env(url, "pgw_not-a-token")

    result = runner.invoke(app, ["queue", "list"], env=base)
    assert (result.exit_code, "not valid" in result.stderr) == (7, True)

    no_url = {k: v for k, v in base.items() if k != "GATEWAY_URL"}
    result = runner.invoke(app, ["queue", "list"], env=no_url)
    assert result.exit_code == 2
    assert "GATEWAY_URL" in result.stderr
    assert "--local" in result.stderr

    result = runner.invoke(
        app, ["queue", "list"], env=base | {"GATEWAY_URL": f"http://127.0.0.1:{free_port()}"}
    )
    assert (result.exit_code, "did not answer" in result.stderr) == (8, True)

    token_file = tmp_path / "bob.token"
    token_file.write_text(api.token("bob") + "\n")
    token_file.chmod(0o644)
    by_file = {k: v for k, v in base.items() if k != "GATEWAY_TOKEN"} | {
        "GATEWAY_TOKEN_FILE": str(token_file)
    }
    result = runner.invoke(app, ["queue", "list"], env=by_file)
    assert result.exit_code == 7
    assert "chmod 600" in result.stderr
    token_file.chmod(0o600)
    result = runner.invoke(app, ["queue", "list", "--json"], env=by_file)
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1


def test_watch_prints_each_state_change_once(tmp_path: Path, backend: Backend, api: Cli) -> None:
    db = backend
    action_id = park(db, api.opa)
    code, out, _ = api(db, "queue", "watch", "--count", "1")
    assert code == 0
    [line] = out.splitlines()
    assert line.startswith(action_id[:8])
    assert "pending" in line
    assert "queuetest_append" in line
