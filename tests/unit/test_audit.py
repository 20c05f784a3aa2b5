"""The hash-chained audit log over a real database (SQLite and PostgreSQL, fixture ``backend``):
chaining, verification, scrubbing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from storage_fixtures import Backend

from gateway.audit import GENESIS_HASH, AuditLog, scrub
from gateway.db import Database
from gateway.errors import AuditError, ChainBroken, DatabaseError
from gateway.ports import AuditEvent


def event(n: int) -> AuditEvent:
    return AuditEvent(
        kind="decision",
        action_id=f"action-{n}",
        tool="k8s_scale",
        subject="alice",
        transport="stdio",
        target={"namespace": "payments", "name": "api"},
        outcome="allow",
        reasons=[{"code": "K8S-001", "rule": "r", "severity": "low", "effect": "warn", "message": "m"}],
        bundle_revision="rev",
        decision_id=f"d-{n}",
        fingerprint="ab" * 32,
        detail={"n": n},
    )


async def fill(log: AuditLog, count: int) -> None:
    for n in range(count):
        await log.record(event(n))


async def test_rows_link_to_the_row_before_them(db: Database) -> None:
    log = AuditLog(db)
    await fill(log, 3)
    rows = list(reversed(await log.recent()))
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    report = await log.verify()
    assert (report.rows, report.head) == (3, rows[-1].hash)


async def test_an_empty_log_verifies(db: Database) -> None:
    report = await AuditLog(db).verify()
    assert (report.rows, report.head) == (0, GENESIS_HASH)


@pytest.mark.parametrize(
    ("sql", "seq"),
    [
        ("UPDATE audit SET outcome = 'deny' WHERE seq = 3", 3),
        ("UPDATE audit SET detail = '{\"n\":99}' WHERE seq = 2", 2),
        ('UPDATE audit SET target = \'{"name": "api", "namespace": "payments"}\' WHERE seq = 4', 4),
        ("DELETE FROM audit WHERE seq = 2", 2),
        ("UPDATE audit SET detail = 'not json' WHERE seq = 5", 5),
    ],
    ids=["edited-outcome", "edited-detail", "reformatted-json", "deleted-row", "garbage"],
)
async def test_any_edit_breaks_the_chain_at_the_edited_row(
    backend: Backend, db: Database, sql: str, seq: int
) -> None:
    log = AuditLog(db)
    await fill(log, 5)
    await backend.execute(sql)
    with pytest.raises(ChainBroken) as caught:
        await log.verify()
    assert caught.value.seq == seq
    assert str(seq) in str(caught.value)


async def test_recomputing_one_rows_hash_still_breaks_the_next_link(backend: Backend, db: Database) -> None:
    log = AuditLog(db)
    await fill(log, 3)
    await backend.execute("UPDATE audit SET hash = ? WHERE seq = 2", ["f" * 64])
    with pytest.raises(ChainBroken) as caught:
        await log.verify()
    assert caught.value.seq == 2


async def test_two_connections_appending_at_once_never_fork_the_chain(backend: Backend) -> None:
    one = await Database.open(backend.target)
    two = await Database.open(backend.target)
    try:
        # On PostgreSQL each log appends from several pooled connections at once, too.
        await asyncio.gather(*(fill(AuditLog(db), 10) for db in (one, two) for _ in range(4)))
        assert (await AuditLog(one).verify()).rows == 80
    finally:
        await one.close()
        await two.close()


async def test_secrets_in_detail_never_reach_the_log(db: Database) -> None:
    log = AuditLog(db)
    secret_event = event(1).model_copy(
        update={
            "detail": {
                "password": "hunter2",
                "nested": {"apiKey": "abc", "note": "fine"},
                "header": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
                "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE",
                "long": "x" * 5000,
            }
        }
    )
    await log.record(secret_event)
    [row] = await log.recent()
    assert row.detail["password"] == "<dropped>"
    assert row.detail["nested"] == {"apiKey": "<dropped>", "note": "fine"}
    assert row.detail["header"] == "<dropped>"
    assert row.detail["pem"] == "<dropped>"
    assert len(row.detail["long"]) < 600
    assert (await log.verify()).rows == 1


def test_scrub_keeps_names_and_digests_but_drops_opaque_tokens() -> None:
    name = "payments-api-canary-rollout-controller-7f9c8d6b5-x2x9q"
    digest = "ab12" * 16
    assert scrub({"name": name, "fingerprint": digest}) == {"name": name, "fingerprint": digest}
    assert scrub({"note": "Zk3qP9sLx7Vb2Nw8Rt5Yh1Jc6Md4Gf0A"}) == {"note": "<dropped>"}


def test_scrub_keeps_plain_values_and_cuts_deep_structures() -> None:
    assert scrub({"replicas": 3, "ok": True, "name": "api", "none": None}) == {
        "replicas": 3,
        "ok": True,
        "name": "api",
        "none": None,
    }
    deep: dict[str, object] = {}
    cursor = deep
    for _ in range(20):
        cursor["next"] = {}
        cursor = cursor["next"]  # type: ignore[assignment]
    assert "<dropped>" in repr(scrub(deep))
    assert len(scrub(list(range(500)))) == 50


async def test_show_returns_one_row_and_none_for_a_missing_seq(db: Database) -> None:
    log = AuditLog(db)
    await fill(log, 2)
    row = await log.get(2)
    assert row is not None
    assert row.action_id == "action-1"
    assert await log.get(9) is None
    assert [r.seq async for r in log.iterate(batch=1)] == [1, 2]


async def test_concurrent_appends_commit_together_and_chain_in_order(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Group commit (SQLite): the events that arrive while a transaction is written go
    # into the next one; on PostgreSQL every append is its own transaction.
    transactions = 0
    blocking = db.write_blocking

    async def counted(work: Any) -> Any:
        nonlocal transactions
        transactions += 1
        return await blocking(work)

    monkeypatch.setattr(db, "write_blocking", counted)
    log = AuditLog(db)
    await asyncio.gather(*(log.record(event(n)) for n in range(20)))
    report = await log.verify()
    assert report.rows == 20
    if db.blocking_writes:  # PostgreSQL orders concurrent appends by who takes the lock first
        in_order = [r.action_id for r in reversed(await log.recent(limit=20))]
        assert in_order == [f"action-{n}" for n in range(20)]
        assert 1 <= transactions < 20


async def test_one_event_that_cannot_be_written_fails_alone(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(db)
    build = log._next  # the row builder, made to fail for one event

    def failing(head: Any, ev: AuditEvent) -> Any:
        if ev.action_id == "action-3":
            raise DatabaseError("disk I/O error")
        return build(head, ev)

    monkeypatch.setattr(log, "_next", failing)
    results = await asyncio.gather(*(log.record(event(n)) for n in range(6)), return_exceptions=True)
    assert [isinstance(r, AuditError) for r in results] == [False, False, False, True, False, False]
    assert "disk I/O error" in str(results[3])
    assert (await log.verify()).rows == 5
