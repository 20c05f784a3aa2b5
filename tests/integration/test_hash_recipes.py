"""The verification recipes of docs/hashes.md, run as written there with Node.js, the
reference JCS implementation (``canonicalize``, installed by ``make jcs-tool``) and the
``sqlite3`` shell, against a real gateway database: what the gateway hashed, another
language recomputes, and an edit made behind the gateway's back is refused."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from queue_support import ALICE, needs_approval, scale_call

from gateway.ports import AuditEvent
from gateway.queue.store import QueueStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hashes.md"
FORMAT1_DUMP = ROOT / "tests" / "unit" / "data" / "audit_format1.sql"
AUDIT_ROWS = "SELECT * FROM audit ORDER BY seq"
PARKED_CALLS = "SELECT call_json, fingerprint FROM actions"


def _recipes() -> dict[str, str]:
    """The doc's ``js`` blocks by the script name their first line pipes into."""
    blocks = re.findall(r"```js\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    named = {re.search(r"node (\S+\.mjs)", block.splitlines()[0]).group(1): block for block in blocks}  # type: ignore[union-attr]
    assert set(named) == {"verify-audit.mjs", "fingerprint.mjs"}
    return named


@pytest.fixture(scope="module")
def recipes() -> dict[str, Path]:
    """The recipes written beside the ``canonicalize`` package, where Node resolves it."""
    jcs_dir = Path(os.environ.get("GATEWAY_JCS_DIR") or ROOT / ".cache" / "jcs")
    if not (jcs_dir / "node_modules" / "canonicalize").is_dir():
        pytest.fail(f"canonicalize is not installed in {jcs_dir}: run `make jcs-tool`")
    for tool in ("node", "sqlite3"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make setup`")
    paths = {}
    for name, text in _recipes().items():
        paths[name] = jcs_dir / name
        paths[name].write_text(text, encoding="utf-8")
    return paths


def _run(recipe: Path, db: Path, query: str) -> subprocess.CompletedProcess[str]:
    rows = subprocess.run(["sqlite3", "-json", str(db), query], capture_output=True, text=True, check=True)
    return subprocess.run(
        ["node", str(recipe)], input=rows.stdout, capture_output=True, text=True, check=False, timeout=60
    )


async def _database(tmp_path: Path, *, begun_before_rfc8785: bool = False) -> tuple[Path, str]:
    """A gateway database (optionally continuing the format-1 log) and its chain's head."""
    db = tmp_path / "gateway.db"
    if begun_before_rfc8785:
        with sqlite3.connect(db) as conn:
            conn.executescript(FORMAT1_DUMP.read_text(encoding="utf-8"))
    store = await QueueStore.open(db)
    try:
        return db, await _fill(store)
    finally:
        await store.close()


async def _fill(store: QueueStore) -> str:
    """Parked calls and audit rows holding what JCS and Python print differently."""
    await store.park(scale_call(), needs_approval(), ALICE)
    odd = {"namespace": "payments", "name": "api", "replicas": 3, "ratio": 1.0, "tiny": 1e-7, "\U0001f600": 1}
    await store.park(
        scale_call(call_args={**odd, "\ufb33": "ключ ✓", "ctl": "a\x01b\u2028"}), needs_approval(), ALICE
    )
    detail = {
        "wait_seconds": 1.0,
        "big": 1e21,
        "neg": -0.0,
        "pi": 333333333.33333329,
        "\ufb33": 2,
        "\U0001f600": 3,
    }
    await store.audit.record(AuditEvent(kind="decision", tool="k8s_get", subject="alice", detail=detail))
    return (await store.audit.verify()).head


async def test_the_node_recipe_recomputes_every_audit_hash_and_refuses_an_edit(
    recipes: dict[str, Path], tmp_path: Path
) -> None:
    db, head = await _database(tmp_path)
    done = _run(recipes["verify-audit.mjs"], db, AUDIT_ROWS)
    assert (done.returncode, done.stdout.strip()) == (0, f"audit chain intact, head {head}"), done.stderr

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET detail = replace(detail, '1e+21', '1e+22') WHERE seq = 3")
    done = _run(recipes["verify-audit.mjs"], db, AUDIT_ROWS)
    assert done.returncode != 0
    assert "audit row 3 does not verify" in done.stderr


async def test_the_node_recipe_follows_a_chain_begun_before_rfc8785(
    recipes: dict[str, Path], tmp_path: Path
) -> None:
    db, head = await _database(tmp_path, begun_before_rfc8785=True)
    done = _run(recipes["verify-audit.mjs"], db, AUDIT_ROWS)
    assert (done.returncode, done.stdout.strip()) == (0, f"audit chain intact, head {head}"), done.stderr


async def test_the_node_recipe_recomputes_every_call_fingerprint(
    recipes: dict[str, Path], tmp_path: Path
) -> None:
    db, _ = await _database(tmp_path)
    done = _run(recipes["fingerprint.mjs"], db, PARKED_CALLS)
    assert (done.returncode, done.stdout.strip()) == (0, "every parked call matches its fingerprint"), (
        done.stderr
    )

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE actions SET call_json = replace(call_json, '\"replicas\":3', '\"replicas\":30')")
    done = _run(recipes["fingerprint.mjs"], db, PARKED_CALLS)
    assert done.returncode != 0
    assert "does not match its fingerprint" in done.stderr
