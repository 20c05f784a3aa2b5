"""`gateway audit` end to end: records written by a real gateway, read, verified and exported
by the real CLI; an edited row is found and named."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from queue_harness import ALICE, BOB, TOOL, cli_env, gateway_stack, queue_opa, settings_for
from storage_fixtures import Backend
from typer.testing import CliRunner

from gateway.cli import app
from gateway.contracts import canonical_json
from gateway.local.opa import OpaServer
from gateway.queue import approve

pytestmark = pytest.mark.integration
_ = queue_opa

runner = CliRunner()
GATEWAY_CLI = Path(sys.executable).with_name("gateway")


@pytest.fixture
def audited_db(tmp_path: Path, backend: Backend, queue_opa: OpaServer) -> Backend:
    """A database (either backend) whose audit log holds a full park → approve → execute history."""
    db = backend

    async def work() -> None:
        async with gateway_stack(settings_for(db, queue_opa, "one"), tmp_path / "x.log") as stack:
            outcome = await stack.gateway.call(TOOL, {"line": "hi"}, ALICE, wait_seconds=0)
            await approve(stack.store, stack.policy, outcome.action_id, BOB)
            await stack.executor.run_once()

    asyncio.run(work())
    return db


def invoke(db: Backend, opa: OpaServer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=cli_env(db, opa, "one", "bob"))
    return result.exit_code, result.stdout, result.stderr


def test_list_and_show_read_the_records_the_gateway_wrote(audited_db: Backend, queue_opa: OpaServer) -> None:
    code, out, _ = invoke(audited_db, queue_opa, "audit", "list", "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["kind"] for r in reversed(records)] == [
        "decision",
        "parked",
        "approval",
        "execution",
        "decision",
        "execution",
    ]
    code, out, _ = invoke(audited_db, queue_opa, "audit", "list", "--limit", "2")
    assert len(out.splitlines()) == 2

    code, out, _ = invoke(audited_db, queue_opa, "audit", "show", "3")
    shown = json.loads(out)
    assert (shown["seq"], shown["kind"], shown["subject"]) == (3, "approval", "bob")
    assert invoke(audited_db, queue_opa, "audit", "show", "99")[0] == 3


def test_verify_passes_on_an_untouched_log(audited_db: Backend, queue_opa: OpaServer) -> None:
    code, out, _ = invoke(audited_db, queue_opa, "audit", "verify", "--json")
    assert code == 0
    assert json.loads(out)["intact"] is True
    assert json.loads(out)["rows"] == 6


def test_verify_names_the_first_edited_row_and_exits_1(audited_db: Backend, queue_opa: OpaServer) -> None:
    audited_db.execute_sync("UPDATE audit SET subject = 'mallory' WHERE seq = 3")
    completed = subprocess.run(
        [str(GATEWAY_CLI), "audit", "verify"],
        env=cli_env(audited_db, queue_opa, "one", "bob"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "audit row 3 was modified" in completed.stderr


def test_export_writes_every_record_so_the_chain_can_be_checked_elsewhere(
    audited_db: Backend, queue_opa: OpaServer, tmp_path: Path
) -> None:
    out_file = tmp_path / "audit.jsonl"
    code, _, err = invoke(audited_db, queue_opa, "audit", "export", "--jsonl", "--output", str(out_file))
    assert code == 0
    assert "exported 6 records" in err

    prev = "0" * 64
    lines = out_file.read_text().splitlines()
    for line in lines:
        record = json.loads(line)
        body = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
        assert record["prev_hash"] == prev
        assert hashlib.sha256((prev + canonical_json(body)).encode()).hexdigest() == record["hash"]
        prev = record["hash"]
    assert len(lines) == 6

    code, out, _ = invoke(audited_db, queue_opa, "audit", "export", "--jsonl")
    assert out.splitlines() == lines
    assert invoke(audited_db, queue_opa, "audit", "export")[0] == 2
