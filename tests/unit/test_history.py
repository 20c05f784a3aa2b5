"""Recent activity for runaway protection: counts per principal and session in the real
database, on both backends (SQLite here; PostgreSQL with the integration suites), sliding
windows, batched writes, failures; and what the pipeline does with them (the action
carries them, an unreadable count refuses changes only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes import InMemoryAudit, InMemoryQueue
from pydantic import BaseModel, ConfigDict
from storage_fixtures import Backend

from gateway.contracts import Decision, History, Principal, ProposedAction, Target
from gateway.db import Database
from gateway.errors import HistoryUnavailable
from gateway.history import ActivityLog
from gateway.pipeline import Gateway
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec

ALICE = Principal(subject="alice", groups=("sre",), transport="http", authenticated=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_counts_are_per_principal_and_session_by_effect_and_window(db: Database) -> None:
    clock = Clock()
    log = ActivityLog(db, clock=clock)
    for effect in ("read", "write", "delete", "delete"):
        log.record("alice", "s1", effect)  # type: ignore[arg-type]
    log.record("alice", "s2", "write")
    log.record("bob", "s3", "delete")
    await log.flush()
    clock.now += 30 * 60  # half an hour later: out of the minute, inside the hour
    log.record("alice", "s1", "write")
    history = await log.history("alice", "s1")
    assert (history.calls_last_minute, history.calls_last_hour) == (1, 6)
    assert (history.writes_last_minute, history.writes_last_hour) == (1, 5)
    assert (history.deletes_last_minute, history.deletes_last_hour) == (0, 2)
    assert history.session is not None
    assert (history.session.calls_last_hour, history.session.writes_last_hour) == (5, 4)
    assert (await log.history("alice", None)).session is None
    bob = await log.history("bob", None)
    assert (bob.deletes_last_hour, bob.calls_last_hour) == (1, 1)
    clock.now += 31 * 60  # the first batch is now more than an hour old
    assert (await log.history("alice", "s1")).calls_last_hour == 1


async def test_a_call_counts_once_before_and_after_its_batch_is_written(db: Database) -> None:
    log = ActivityLog(db)
    log.record("alice", None, "delete")
    assert (await log.history("alice", None)).deletes_last_minute == 1  # pending, this process
    await log.flush()
    assert (await log.history("alice", None)).deletes_last_minute == 1  # in the table, once
    other = ActivityLog(db)  # another process on the same database
    assert (await other.history("alice", None)).deletes_last_minute == 1


async def test_reused_counts_stay_exact_for_this_process_and_see_others_after_a_while(db: Database) -> None:
    clock = Clock()
    log = ActivityLog(db, clock=clock, reuse_seconds=0.1)
    other = ActivityLog(db, clock=clock)  # another process on the same database
    assert (await log.history("alice", None, reuse=True)).writes_last_minute == 0  # read, kept
    other.record("alice", None, "write")
    await other.flush()
    log.record("alice", None, "write")
    assert (await log.history("alice", None, reuse=True)).writes_last_minute == 1  # its own, pending
    assert (await log.history("alice", None)).writes_last_minute == 2  # a change reads the table
    clock.now += 0.2  # past the reuse: the table is read again
    assert (await log.history("alice", None, reuse=True)).writes_last_minute == 2
    await log.flush()  # its own call moves into the table: nothing is counted twice
    assert (await log.history("alice", None, reuse=True)).writes_last_minute == 2
    other.record("alice", None, "delete")
    await other.flush()
    await log.flush()  # a batch (even an empty one) forgets what was read
    assert (await log.history("alice", None, reuse=True)).deletes_last_minute == 1


async def test_counts_survive_a_new_process_on_the_same_database(backend: Backend) -> None:
    first = await Database.open(backend.target)
    log = ActivityLog(first)
    for _ in range(3):
        log.record("alice", None, "write")
    await log.flush()
    await first.close()
    second = await Database.open(backend.target)
    try:
        assert (await ActivityLog(second).history("alice", None)).writes_last_minute == 3
    finally:
        await second.close()


async def test_old_buckets_are_pruned_by_the_batch_writer(db: Database) -> None:
    clock = Clock()
    log = ActivityLog(db, clock=clock)
    log.record("alice", None, "read")
    await log.flush()
    clock.now += 3 * 3600
    log.record("alice", None, "read")
    await log.flush()
    async with db.read() as conn:
        rows = await conn.fetchall("SELECT DISTINCT bucket FROM activity")
    assert {r[0] for r in rows} == {int(clock.now) // 10 * 10, int(clock.now) // 60 * 60}


async def test_a_busy_principal_costs_a_bounded_read(db: Database) -> None:
    # Thousands of calls land in at most 7 + 61 buckets per scope and width.
    clock = Clock()
    log = ActivityLog(db, clock=clock)
    for _ in range(3000):
        clock.now += 1
        log.record("alice", "s", "write")
    await log.flush()
    async with db.read() as conn:
        (rows,) = await conn.fetchall("SELECT count(*) FROM activity")
    assert rows[0] == 2 * (301 + 51)  # one row per scope and bucket, not per call
    history = await log.history("alice", "s")
    assert 60 <= history.writes_last_minute <= 70  # the minute, in 10-second steps
    assert history.writes_last_hour == 3000
    assert history.session is not None
    assert history.session.writes_last_hour == 3000


async def test_unreadable_counts_raise_history_unavailable_and_unwritable_ones_wait(db: Database) -> None:
    log = ActivityLog(db)
    async with db.write() as conn:
        await conn.execute("DROP TABLE activity")
    with pytest.raises(HistoryUnavailable, match="recent activity could not be read"):
        await log.history("alice", None)
    log.record("alice", None, "write")
    await log.flush()  # fails quietly: the row stays for the next batch
    async with db.write() as conn:
        await conn.execute(
            "CREATE TABLE activity (scope TEXT, width INTEGER, bucket INTEGER, reads INTEGER, "
            "writes INTEGER, deletes INTEGER, PRIMARY KEY (scope, width, bucket))"
        )
    await log.flush()
    assert (await ActivityLog(db).history("alice", None)).writes_last_minute == 1


async def test_a_read_slower_than_its_timeout_is_unavailable(db: Database, backend: Backend) -> None:
    log = ActivityLog(db, read_timeout=0.05)
    # The database is busy for longer than the read may wait: SQLite's one connection is
    # held; on PostgreSQL another transaction holds the table.
    async with db.read() if backend.name == "sqlite" else db.write() as conn:
        if backend.name == "postgres":
            await conn.execute("LOCK TABLE activity IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(HistoryUnavailable, match="TimeoutError"):
            await log.history("alice", None)


# -- the pipeline's side ------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class _Policy:
    """Records what it was asked and allows."""

    def __init__(self) -> None:
        self.seen: list[ProposedAction] = []

    async def decide_all(self, actions: Sequence[ProposedAction]) -> Decision:
        self.seen.extend(actions)
        return Decision(outcome="allow")


class _Activity:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.recorded: list[tuple[str, str | None, str]] = []

    async def history(self, subject: str, session: str | None, *, reuse: bool = False) -> History:
        if self.fail:
            raise HistoryUnavailable("recent activity could not be read (OperationalError)")
        return History(deletes_last_minute=7, session=History() if session else None)

    def record(self, subject: str, session: str | None, effect: str) -> None:
        self.recorded.append((subject, session, effect))


def _gateway(tmp_path: Path, activity: _Activity | None, policy: _Policy) -> Gateway:
    registry = ToolRegistry()
    for effect in ("read", "delete"):

        async def prepare(args: _Args) -> list[Prepared]:
            return [Prepared(target=Target(namespace="dev", kind="Thing", name=args.name))]

        async def execute(args: _Args, ctx: ExecutionContext) -> Any:
            return {"ran": args.name}

        registry.register(
            ToolSpec(
                name=f"thing_{effect}",
                title=effect,
                description=effect,
                backend="kubernetes",
                operation=effect,
                effect=effect,  # type: ignore[arg-type]
                args=_Args,
                prepare=prepare,
                execute=execute,
            )
        )
    return Gateway(
        Settings(db_path=tmp_path / "g.db"),
        registry,
        policy,
        InMemoryQueue(),
        InMemoryAudit(),
        activity=activity,
    )


async def test_every_action_carries_the_history_and_the_decided_call_is_counted(tmp_path: Path) -> None:
    activity, policy = _Activity(), _Policy()
    outcome = await _gateway(tmp_path, activity, policy).call(
        "thing_delete", {"name": "a"}, ALICE, session="s9"
    )
    assert outcome.status == "executed"
    (action,) = policy.seen
    assert action.history is not None
    assert action.history.deletes_last_minute == 7
    assert action.as_input()["history"]["deletes_last_minute"] == 7
    assert activity.recorded == [("alice", "s9", "delete")]


async def test_unreadable_history_refuses_a_change_without_asking_policy(tmp_path: Path) -> None:
    activity, policy = _Activity(fail=True), _Policy()
    gateway = _gateway(tmp_path, activity, policy)
    refused = await gateway.call("thing_delete", {"name": "a"}, ALICE)
    assert refused.status == "denied"
    assert refused.decision is not None
    assert [r.code for r in refused.decision.reasons] == ["GW-HISTORY-UNAVAILABLE"]
    assert policy.seen == []
    read = await gateway.call("thing_read", {"name": "a"}, ALICE)
    assert read.status == "executed"
    assert policy.seen[0].history is None  # judged without counts


async def test_without_an_activity_log_nothing_is_counted(tmp_path: Path) -> None:
    policy = _Policy()
    await _gateway(tmp_path, None, policy).call("thing_read", {"name": "a"}, ALICE)
    assert policy.seen[0].history is None
    assert "history" in policy.seen[0].as_input()  # null: policy can tell
