"""Signed approvals end to end: keys made and signatures produced by the real `ssh-keygen`,
the CLI as the approvals API's client, a real gateway (OPA, executor) verifying them, and
`gateway audit verify` re-verifying them afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from queue_harness import (
    ALICE,
    TOOL,
    api_env,
    api_gateway,
    cli_env,
    executions,
    gateway_stack,
    queue_opa,
    settings_for,
)
from storage_fixtures import Backend
from typer.testing import CliRunner

from gateway.auth import append_token
from gateway.cli import app
from gateway.local.opa import OpaServer

pytestmark = pytest.mark.integration
_ = queue_opa

runner = CliRunner()


def keygen(path: Path, comment: str) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )
    return path


class Signed:
    def __init__(self, tmp: Path, db: Backend, opa: OpaServer, stack: contextlib.ExitStack) -> None:
        self.tmp, self.db = tmp, db
        self.keys = {name: keygen(tmp / f"{name}_ed25519", name) for name in ("bob", "carol", "mallory")}
        self.allowed = tmp / "allowed_signers"
        self.revoked = tmp / "revoked_signers"
        self.allowed.write_text(
            "".join(f"{n} {Path(str(self.keys[n]) + '.pub').read_text()}" for n in ("bob", "carol"))
        )
        tokens = tmp / "tokens.jsonl"
        self.tokens = {
            n: append_token(tokens, subject=n, groups=("sre",)) for n in ("bob", "carol", "mallory")
        }
        self.settings = settings_for(
            self.db,
            opa,
            "two",
            transport="http",
            tokens_file=tokens,
            approval_signatures="required",
            allowed_signers_file=self.allowed,
            revoked_signers_file=self.revoked,
        )
        self.log = tmp / "executions.log"
        self.opa = opa
        self.url = stack.enter_context(api_gateway(self.settings, self.log)).url

    def park(self, line: str = "hello") -> str:
        async def work() -> str:
            async with gateway_stack(self.settings, self.log) as stack:
                return (await stack.gateway.call(TOOL, {"line": line}, ALICE, wait_seconds=0)).action_id

        return asyncio.run(work())

    def cli(self, who: str, *args: str, key: str | None = None) -> tuple[int, str, str]:
        env = api_env(
            self.url,
            self.tokens[who],
            **self.db.env(),
            GATEWAY_ALLOWED_SIGNERS_FILE=str(self.allowed),
            GATEWAY_REVOKED_SIGNERS_FILE=str(self.revoked),
        )
        if key is not None:
            env["GATEWAY_SIGNING_KEY"] = str(self.keys[key])
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    def state(self, action_id: str) -> str:
        [(state,)] = self.db.execute_sync("SELECT state FROM actions WHERE id = ?", [action_id])
        return str(state)

    def wait_for(self, action_id: str, *states: str) -> str:
        deadline = time.monotonic() + 15
        while (state := self.state(action_id)) not in states:
            assert time.monotonic() < deadline, f"still {state}"
            time.sleep(0.05)
        return state


@pytest.fixture
def signed(tmp_path: Path, backend: Backend, queue_opa: OpaServer) -> Iterator[Signed]:
    with contextlib.ExitStack() as stack:
        yield Signed(tmp_path, backend, queue_opa, stack)


def test_two_approvers_sign_with_ssh_keygen_and_the_action_runs_once(signed: Signed) -> None:
    action_id = signed.park()
    code, out, err = signed.cli("bob", "queue", "approve", action_id, "--reason", "reviewed", key="bob")
    assert code == 0, err
    assert "still pending" in out
    code, out, err = signed.cli("carol", "queue", "approve", action_id[:8], "--json", key="carol")
    assert code == 0, err
    body = json.loads(out)
    assert (body["state"], body["signed"]) == ("approved", True)
    assert signed.wait_for(action_id, "succeeded", "failed") == "succeeded"
    assert len(executions(signed.log)) == 1

    # The stored signature is one ssh-keygen itself accepts for bob.
    [(statement, signature)] = signed.db.execute_sync(
        "SELECT statement, signature FROM approvals WHERE action_id = ? AND subject = 'bob'", [action_id]
    )
    (signed.tmp / "bob.sig").write_text(signature)
    verify = ["ssh-keygen", "-Y", "verify", "-f", str(signed.allowed), "-I", "bob"]
    check = subprocess.run(
        [*verify, "-n", "policy-gateway-approval", "-s", str(signed.tmp / "bob.sig")],
        input=statement.encode(), capture_output=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert json.loads(statement)["reason"] == "reviewed"

    code, out, err = signed.cli("bob", "audit", "verify")
    assert code == 0, err
    assert "2 SSH signature(s) and 2 gateway attestation(s) verified" in out

    # An approval whose signature is swapped afterwards no longer verifies.
    signed.db.execute_sync(
        "UPDATE approvals SET signature = (SELECT signature FROM approvals WHERE action_id = ? AND "
        "subject = 'carol') WHERE action_id = ? AND subject = 'bob'",
        [action_id, action_id],
    )
    code, _, err = signed.cli("bob", "audit", "verify")
    assert code == 1
    assert f"approval of {action_id} by bob" in err
    assert "differ from what the audit chain recorded" in err


def test_an_unsigned_approval_is_refused_when_signatures_are_required(signed: Signed) -> None:
    action_id = signed.park()
    code, _, err = signed.cli("bob", "queue", "approve", action_id)
    assert code == 1
    assert "requires approvals signed with the approver's SSH key" in err
    code, _, err = signed.cli("bob", "queue", "approve", action_id, key="mallory")
    assert code == 1
    assert "not an allowed signer for bob" in err
    assert signed.state(action_id) == "pending"


def test_a_signature_made_for_another_namespace_is_refused(signed: Signed) -> None:
    action_id = signed.park()
    headers = {"Authorization": f"Bearer {signed.tokens['bob']}"}
    with httpx.Client(base_url=signed.url, headers=headers, trust_env=False) as http:
        statement = http.post(f"/api/v1/actions/{action_id}/statement", json={}).json()["statement"]
        git = subprocess.run(
            ["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(signed.keys["bob"])],
            input=statement.encode(), capture_output=True, check=True,
        ).stdout.decode()  # fmt: skip
        resp = http.post(
            f"/api/v1/actions/{action_id}/approve", json={"statement": statement, "signature": git}
        )
    assert resp.status_code == 403
    assert resp.json()["error"] == "approval_refused"
    assert "namespace 'git'" in resp.json()["message"]
    assert signed.state(action_id) == "pending"


def test_a_key_revoked_before_execution_stops_the_action(signed: Signed) -> None:
    action_id = signed.park()
    assert signed.cli("bob", "queue", "approve", action_id, key="bob")[0] == 0
    signed.revoked.write_text(Path(str(signed.keys["bob"]) + ".pub").read_text())
    code, _, err = signed.cli("carol", "queue", "approve", action_id, key="carol")
    assert code == 1
    assert "approval by bob is not proven" in err
    assert "revoked" in err
    assert signed.state(action_id) == "pending"
    assert executions(signed.log) == []


def test_the_gateway_refuses_approvals_written_with_local(signed: Signed) -> None:
    action_id = signed.park()
    for who in ("bob", "carol"):
        env = cli_env(signed.db, signed.opa, "two", who) | {"GATEWAY_TRANSPORT": "stdio"}
        result = runner.invoke(app, ["queue", "approve", action_id, "--local"], env=env)
        assert result.exit_code == 0, result.stderr
    assert signed.wait_for(action_id, "failed", "succeeded") == "failed"
    [(error,)] = signed.db.execute_sync("SELECT error FROM actions WHERE id = ?", [action_id])
    assert "not proven" in error
    assert executions(signed.log) == []
