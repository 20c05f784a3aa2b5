"""Audit hash formats: a log written before RFC 8785 still verifies after the upgrade, new
rows are hashed over RFC 8785 canonical JSON, and a row cannot change its format."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import rfc8785

from gateway.audit import HASH_FORMAT, AuditLog
from gateway.db import Database
from gateway.errors import ChainBroken
from gateway.ports import AuditEvent

FORMAT1_DUMP = Path(__file__).parent / "data" / "audit_format1.sql"
FORMAT1_HEAD = "229733198a956db55b469cf5e5c8db104f006c1f62b34246f694ba6ddcf430dd"


@pytest.fixture
async def upgraded(tmp_path: Path) -> AsyncIterator[tuple[Path, AuditLog]]:
    """The format-1 log, opened (and so migrated) by this version."""
    path = tmp_path / "gateway.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(FORMAT1_DUMP.read_text(encoding="utf-8"))
    db = await Database.open(path)
    yield path, AuditLog(db)
    await db.close()


def _edit(path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(sql, params)


async def test_a_log_written_before_rfc8785_still_verifies(upgraded: tuple[Path, AuditLog]) -> None:
    _, log = upgraded
    report = await log.verify()
    assert (report.rows, report.head) == (4, FORMAT1_HEAD)
    assert {r.hash_format for r in await log.recent()} == {1}


async def test_rows_appended_after_the_upgrade_use_rfc8785_and_extend_the_same_chain(
    upgraded: tuple[Path, AuditLog],
) -> None:
    _, log = upgraded
    await log.record(AuditEvent(kind="decision", tool="k8s_get", detail={"wait_seconds": 1.0, "ratio": 2.5}))
    report = await log.verify()
    newest = (await log.recent(limit=1))[0]
    assert (report.rows, newest.prev_hash, newest.hash_format) == (5, FORMAT1_HEAD, HASH_FORMAT)
    record = newest.model_dump(exclude={"prev_hash", "hash"})
    assert record["detail"] == {"wait_seconds": 1, "ratio": 2.5}
    expected = hashlib.sha256(newest.prev_hash.encode() + rfc8785.dumps(record)).hexdigest()
    assert newest.hash == expected


async def test_an_edit_to_a_format1_row_is_still_detected(upgraded: tuple[Path, AuditLog]) -> None:
    path, log = upgraded
    edited = '{"big":1e+21,"ratio":2.5,"tiny":1e-07,"wait_seconds":2.0}'
    _edit(path, "UPDATE audit SET detail = ? WHERE seq = 2", edited)
    with pytest.raises(ChainBroken, match="audit row 2 was modified"):
        await log.verify()


@pytest.mark.parametrize(("seq", "relabel"), [(2, 2), (5, 1)], ids=["1-to-2", "2-to-1"])
async def test_a_row_relabelled_to_another_hash_format_breaks_the_chain(
    upgraded: tuple[Path, AuditLog], seq: int, relabel: int
) -> None:
    path, log = upgraded
    await log.record(AuditEvent(kind="decision", tool="k8s_get"))
    await log.record(AuditEvent(kind="decision", tool="k8s_get"))
    _edit(path, "UPDATE audit SET hash_format = ? WHERE seq = ?", relabel, seq)
    with pytest.raises(ChainBroken, match=f"audit row {seq}"):
        await log.verify()


async def test_values_json_cannot_carry_are_kept_by_name(upgraded: tuple[Path, AuditLog]) -> None:
    _, log = upgraded
    await log.record(AuditEvent(kind="failure", detail={"ratio": math.nan, "size": 2**60}))
    assert (await log.recent(limit=1))[0].detail == {"ratio": "nan", "size": str(2**60)}
    assert (await log.verify()).rows == 5


def test_the_format1_fixture_differs_from_rfc8785_where_it_should() -> None:
    # Otherwise the tests above would not tell the two formats apart.
    detail = '{"big":1e+21,"ratio":2.5,"tiny":1e-07,"wait_seconds":1.0}'
    assert detail in FORMAT1_DUMP.read_text(encoding="utf-8")
    assert rfc8785.dumps(json.loads(detail)).decode() != detail
