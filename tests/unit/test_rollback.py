"""``gateway_rollback`` on the decision path, with in-memory parts: what a rollback tells policy,
who may propose one, and that bad requests reach neither policy nor a backend (a counting
decider and a recording reverser see nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes import InMemoryAudit, InMemoryJournal, InMemoryQueue
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from gateway.changes import Change
from gateway.cli import app
from gateway.contracts import (
    ApprovalRequirement,
    Decision,
    Effect,
    History,
    Principal,
    ProposedAction,
    Reason,
    Target,
)
from gateway.errors import Conflict, Drifted, RollbackRefused
from gateway.pipeline import Gateway
from gateway.rollback import RollbackTool
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec

ALICE = Principal(subject="alice", groups=("developers",), transport="http", authenticated=True)
BOB = Principal(subject="bob", groups=("sre",), transport="http", authenticated=True)
MALLORY = Principal(subject="mallory", groups=("developers",), transport="http", authenticated=True)
TARGET = Target(
    cluster="sandbox", namespace="dev", api_version="v1", kind="ConfigMap", name="c", environment="dev"
)
APPROVAL = Reason(code="T-1", rule="t", severity="high", effect="needs_approval", message="a human decides")


class CountingDecider:
    """A decider that records every action it is asked about and answers ``outcome``."""

    def __init__(self) -> None:
        self.seen: list[ProposedAction] = []
        self.outcome: Decision = Decision(outcome="allow")

    async def decide_all(self, actions: Sequence[ProposedAction]) -> Decision:
        self.seen.extend(actions)
        return self.outcome


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str


class Reverser:
    """Records what it is asked; its inverse deletes (``drift`` makes it refuse instead)."""

    def __init__(self) -> None:
        self.prepared: list[Sequence[Change]] = []
        self.executed: list[ExecutionContext] = []
        self.drift = False

    async def prepare(self, changes: Sequence[Change], force: bool) -> list[Prepared]:
        self.prepared.append(changes)
        if self.drift and not force:
            raise Drifted("ConfigMap dev/c changed since the gateway's write: data.v: '2' -> '3'")
        return [
            Prepared(target=c.target, current=c.after, object=c.after, effect="delete",
                     policy_args={"change": i, "inverse": "delete", "drifted": self.drift})
            for i, c in enumerate(changes)
        ]  # fmt: skip

    async def execute(self, changes: Sequence[Change], ctx: ExecutionContext) -> Any:
        self.executed.append(ctx)
        for position, action in enumerate(ctx.call.actions):
            ctx.changes.add(Change(index=position, kind="deleted", backend="kubernetes", target=action.target,
                                   before=changes[0].after))  # fmt: skip
        return {"rolled_back": [{"inverse": "delete"}]}


class CountingActivity:
    """Runaway protection's activity log, recording what each call is counted as."""

    def __init__(self) -> None:
        self.counted: list[Effect] = []

    async def history(self, subject: str, session: str | None, *, reuse: bool = False) -> History:
        return History()

    def record(self, subject: str, session: str | None, effect: Effect) -> None:
        self.counted.append(effect)


class Parts:
    def __init__(self, tmp: Path, *, rollback_groups: tuple[str, ...] = ()) -> None:
        self.decider, self.audit, self.queue = CountingDecider(), InMemoryAudit(), InMemoryQueue()
        self.activity = CountingActivity()
        self.journal, self.reverser = InMemoryJournal(), Reverser()
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        registry = ToolRegistry()
        registry.register(self._write_spec())
        self.tool = RollbackTool(
            self.journal,
            registry,
            rollback_groups=rollback_groups,
            state_of=self._state_of,
            clock=lambda: self.now,
        )
        registry.register(self.tool.spec())
        settings = Settings(db_path=tmp / "unused.db")
        self.gateway = Gateway(
            settings,
            registry,
            self.decider,
            self.queue,
            self.audit,
            activity=self.activity,
            journal=self.journal,
        )

    async def _state_of(self, ref: str) -> str | None:
        parked = self.queue.actions.get(ref)
        return parked.state.value if parked else None

    def _write_spec(self) -> ToolSpec[Args]:
        async def prepare(args: Args) -> list[Prepared]:
            return [Prepared(target=TARGET, object={"data": {"v": args.value}})]

        async def execute(args: Args, ctx: ExecutionContext) -> Any:
            after = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u1"}}
            ctx.changes.add(Change(index=0, kind="created", backend="kubernetes", target=TARGET, after=after))
            return {"written": args.value}

        return ToolSpec(
            name="k8s_apply",
            title="t",
            description="d",
            backend="kubernetes",
            operation="apply",
            effect="write",
            args=Args,
            prepare=prepare,
            execute=execute,
            undo=self.reverser,
        )

    async def write(self, principal: Principal = ALICE, decision: Decision | None = None) -> str:
        self.decider.outcome = decision or Decision(outcome="allow")
        outcome = await self.gateway.call("k8s_apply", {"value": "1"}, principal)
        assert outcome.status == "executed", outcome
        self.decider.outcome = Decision(outcome="allow")
        self.decider.seen.clear()
        self.audit.events.clear()
        return outcome.action_id

    def stamp(self, action_id: str, executed_at: datetime) -> None:
        record = self.journal.records[action_id]
        text = executed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.journal.records[action_id] = record.model_copy(update={"executed_at": text})


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    return Parts(tmp_path)


async def test_an_executed_write_is_journaled_with_its_requester(parts: Parts) -> None:
    action = await parts.write()
    record = await parts.journal.find(action)
    assert (record.tool, record.requester, record.complete) == ("k8s_apply", ALICE, True)
    assert record.changes[0].kind == "created"


async def test_a_rollback_is_judged_as_what_it_does_with_the_facts_policy_needs(parts: Parts) -> None:
    action = await parts.write()
    parts.stamp(action, parts.now - timedelta(minutes=30))

    outcome = await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)

    assert outcome.status == "executed", outcome
    (judged,) = parts.decider.seen
    assert (judged.tool, judged.backend, judged.operation, judged.effect) == (
        "gateway_rollback", "kubernetes", "rollback", "delete",
    )  # fmt: skip
    assert judged.target == TARGET
    assert judged.args == {
        "change": 0,
        "inverse": "delete",
        "drifted": False,
        "rollback_of": action,
        "original_tool": "k8s_apply",
        "original_requester": "alice",
        "original_complete": True,
        "executed_at": "2026-01-05T11:30:00.000000Z",
        "age_seconds": 1800,
        "rollback_of_rollback": False,
        "force": False,
    }
    assert outcome.result["rollback_of"] == action


async def test_the_rollback_is_audited_linked_to_the_original_and_marks_it(parts: Parts) -> None:
    action = await parts.write()
    outcome = await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)

    assert [(e.kind, e.detail.get("rollback_of")) for e in parts.audit.events] == [
        ("decision", action),
        ("execution", action),
    ]
    done = (await parts.journal.find(action)).rolled_back
    assert done is not None
    assert (done.by_action, done.subject) == (outcome.action_id, "alice")
    rollback = await parts.journal.find(outcome.action_id)
    assert rollback.rollback_of == action


async def test_a_rollback_of_a_rollback_says_so_and_runs(parts: Parts) -> None:
    action = await parts.write()
    first = await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)
    parts.decider.seen.clear()

    second = await parts.gateway.call("gateway_rollback", {"action_id": first.action_id}, ALICE)

    assert second.status == "executed", second
    assert parts.decider.seen[0].args["rollback_of_rollback"] is True
    assert parts.decider.seen[0].args["original_tool"] == "gateway_rollback"


async def test_a_rollback_policy_parks_is_parked_like_any_call(parts: Parts) -> None:
    action = await parts.write()
    parts.decider.outcome = Decision(
        outcome="needs_approval", reasons=[APPROVAL], approval=ApprovalRequirement()
    )

    outcome = await parts.gateway.call("gateway_rollback", {"action_id": action, "force": True}, ALICE)

    assert outcome.status == "pending"
    parked = parts.queue.actions[outcome.action_id]
    assert parked.call.tool == "gateway_rollback"
    assert parked.call.actions[0].args["force"] is True
    assert parts.reverser.executed == []
    assert (await parts.journal.find(action)).rolled_back is None


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("0000dead-beef-4000-8000-000000000000", "no executed change has id"),
        ("abcd", "no executed change has id"),
    ],
)
async def test_an_unknown_id_is_refused_before_policy_or_a_backend(
    parts: Parts, ref: str, message: str
) -> None:
    await parts.write()
    with pytest.raises(RollbackRefused, match=message) as refused:
        await parts.gateway.call("gateway_rollback", {"action_id": ref}, ALICE)
    assert refused.value.reason == "unknown"
    assert parts.decider.seen == []
    assert parts.reverser.prepared == []
    assert [e.kind for e in parts.audit.events] == ["rejected_request"]


async def test_an_action_that_never_ran_is_refused_before_policy(parts: Parts) -> None:
    parts.decider.outcome = Decision(
        outcome="needs_approval", reasons=[APPROVAL], approval=ApprovalRequirement()
    )
    pending = await parts.gateway.call("k8s_apply", {"value": "1"}, ALICE)
    parts.decider.seen.clear()

    with pytest.raises(RollbackRefused, match=f"action {pending.action_id} is pending: it never executed"):
        await parts.gateway.call("gateway_rollback", {"action_id": pending.action_id}, ALICE)
    assert parts.decider.seen == []
    assert parts.reverser.prepared == []


async def test_another_principals_action_is_refused_before_policy(parts: Parts) -> None:
    action = await parts.write()
    with pytest.raises(RollbackRefused, match="you may not roll back") as refused:
        await parts.gateway.call("gateway_rollback", {"action_id": action}, MALLORY)
    assert refused.value.reason == "not_allowed"
    assert "alice" not in str(refused.value)
    assert parts.decider.seen == []
    assert parts.reverser.prepared == []


async def test_the_same_name_unauthenticated_is_not_the_requester(parts: Parts) -> None:
    action = await parts.write()
    anonymous = Principal(subject="alice", transport="http", authenticated=False)
    with pytest.raises(RollbackRefused, match="you may not roll back"):
        await parts.gateway.call("gateway_rollback", {"action_id": action}, anonymous)
    assert parts.decider.seen == []


async def test_approver_groups_of_the_decision_it_ran_under_may_roll_it_back(parts: Parts) -> None:
    ran_under = Decision(outcome="allow", approval=ApprovalRequirement(approver_groups=["sre"]))
    action = await parts.write(decision=ran_under)
    outcome = await parts.gateway.call("gateway_rollback", {"action_id": action}, BOB)
    assert outcome.status == "executed", outcome


async def test_rollback_groups_may_roll_back_anyones_action(tmp_path: Path) -> None:
    parts = Parts(tmp_path, rollback_groups=("sre",))
    action = await parts.write()
    outcome = await parts.gateway.call("gateway_rollback", {"action_id": action}, BOB)
    assert outcome.status == "executed", outcome
    with pytest.raises(RollbackRefused):
        await parts.gateway.call("gateway_rollback", {"action_id": action}, MALLORY)


async def test_an_action_already_rolled_back_is_refused_and_names_the_rollback(parts: Parts) -> None:
    action = await parts.write()
    first = await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)
    parts.decider.seen.clear()
    with pytest.raises(RollbackRefused, match=f"roll back {first.action_id} to redo it") as refused:
        await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)
    assert refused.value.reason == "rolled_back"
    assert parts.decider.seen == []


async def test_a_deleted_palette_cluster_cannot_be_rolled_back(parts: Parts) -> None:
    action = await parts.write()
    record = parts.journal.records[action]
    gone = Change(index=0, kind="palette_deleted", backend="palette", target=Target(cluster="uid-1"))
    parts.journal.records[action] = record.model_copy(update={"changes": (gone,)})

    with pytest.raises(RollbackRefused, match="cannot be rolled back: a deleted Palette cluster") as refused:
        await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)
    assert refused.value.reason == "irreversible"
    assert parts.decider.seen == []


async def test_a_drifted_object_fails_the_call_before_policy_unless_forced(parts: Parts) -> None:
    action = await parts.write()
    parts.reverser.drift = True

    refused = await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)

    assert refused.status == "failed"
    assert "data.v: '2' -> '3'" in (refused.error or "")
    assert parts.decider.seen == []
    forced = await parts.gateway.call("gateway_rollback", {"action_id": action, "force": True}, ALICE)
    assert forced.status == "executed"
    assert parts.decider.seen[0].args["force"] is True
    assert parts.decider.seen[0].args["drifted"] is True


async def test_a_write_that_fails_after_changing_something_is_journaled_as_incomplete(parts: Parts) -> None:
    async def half(args: Args, ctx: ExecutionContext) -> Any:
        ctx.changes.add(Change(index=0, kind="created", backend="kubernetes", target=TARGET, after={}))
        raise Conflict("the second document conflicted")

    spec = parts.gateway.registry.get("k8s_apply")
    object.__setattr__(spec, "execute", half)
    outcome = await parts.gateway.call("k8s_apply", {"value": "2"}, ALICE)

    assert outcome.status == "failed"
    assert (await parts.journal.find(outcome.action_id)).complete is False


async def test_runaway_protection_counts_a_rollback_as_what_it_does(parts: Parts) -> None:
    # The tool is a "write"; the inverse of a create deletes, and is counted as a delete.
    action = await parts.write()
    parts.activity.counted.clear()

    await parts.gateway.call("gateway_rollback", {"action_id": action}, ALICE)

    assert parts.activity.counted == ["delete"]


def test_rollback_groups_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_ROLLBACK_GROUPS", "sre, on-call")
    assert Settings().rollback_groups == ("sre", "on-call")


def test_the_cli_rollback_needs_the_running_gateway_and_says_so() -> None:
    result = CliRunner().invoke(app, ["queue", "rollback", "3f0c9a1e"], env={"GATEWAY_URL": ""})

    assert result.exit_code == 2
    assert "a rollback is proposed to the running gateway" in result.stderr
    assert "there is no --local rollback" in result.stderr
    assert CliRunner().invoke(app, ["queue", "rollback", "3f0c9a1e", "--local"]).exit_code == 2
