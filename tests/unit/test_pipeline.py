"""The decision path without binaries: admission, fail-closed policy, prepare failures, the
executor's side. The policy client is the real one pointed at a port nobody listens on,
so every decision these tests reach is the fail-closed deny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import InMemoryAudit, InMemoryQueue
from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Decision, PlannedCall, Principal, ProposedAction, Target
from gateway.errors import AuditError, BackendError, InvalidArguments, NotFound, PayloadTooLarge, UnknownTool
from gateway.local.process import free_port
from gateway.pipeline import Gateway
from gateway.policy import PolicyClient
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec

ALICE = Principal(subject="alice", groups=("sre",), transport="stdio", authenticated=True)


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=20)
    replicas: int = Field(default=1, ge=0, le=10)
    labels: dict[str, str] = Field(default_factory=dict)


class Backend:
    def __init__(self) -> None:
        self.prepared: list[str] = []
        self.executed: list[str] = []

    async def prepare(self, args: Args) -> list[Prepared]:
        self.prepared.append(args.name)
        if args.name == "missing":
            raise NotFound("thing 'missing' does not exist")
        if args.name == "crash":
            raise RuntimeError("token=abc123 internal")
        return [Prepared(target=Target(namespace="dev", kind="Thing", name=args.name))]

    async def execute(self, args: Args, ctx: ExecutionContext) -> Any:
        self.executed.append(args.name)
        if args.name == "boom":
            raise ValueError("password=hunter2 leaked in a crash")
        return {"name": args.name, "data": {"k": "v"}, "note": "Authorization: Bearer abc.def.ghi"}

    def spec(self) -> ToolSpec[Args]:
        return ToolSpec(
            name="thing_scale",
            title="Scale a thing",
            description="Scale a thing.",
            backend="kubernetes",
            operation="scale",
            effect="write",
            args=Args,
            prepare=self.prepare,
            execute=self.execute,
        )


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
async def parts(backend: Backend, tmp_path: Path) -> Any:
    settings = Settings(
        opa_url=f"http://127.0.0.1:{free_port()}",
        opa_timeout_seconds=0.5,
        max_argument_bytes=1024,
        db_path=tmp_path / "unused.db",
    )
    registry = ToolRegistry()
    registry.register(backend.spec())
    audit, queue = InMemoryAudit(), InMemoryQueue()
    async with PolicyClient(settings) as policy:
        yield Gateway(settings, registry, policy, queue, audit), audit, queue


async def test_oversized_arguments_are_refused_before_anything_else(parts: Any, backend: Backend) -> None:
    gateway, audit, _ = parts
    with pytest.raises(PayloadTooLarge, match="above the limit of 1024 bytes"):
        await gateway.call("no_such_tool", {"name": "x" * 2000}, ALICE)
    assert backend.prepared == []
    assert audit.kinds() == ["rejected_request"]
    assert audit.events[0].detail["error"] == "PayloadTooLarge"


async def test_unknown_tool_is_refused_and_audited(parts: Any) -> None:
    gateway, audit, _ = parts
    with pytest.raises(UnknownTool):
        await gateway.call("no_such_tool", {}, ALICE)
    assert [(e.kind, e.tool, e.subject) for e in audit.events] == [
        ("rejected_request", "no_such_tool", "alice")
    ]


async def test_invalid_arguments_name_fields_and_expectations_but_not_values(
    parts: Any, backend: Backend
) -> None:
    gateway, audit, _ = parts
    with pytest.raises(InvalidArguments) as raised:
        await gateway.call("thing_scale", {"name": "", "replicas": "sekrit-value"}, ALICE)
    message = str(raised.value)
    assert "name: String should have at least 1 character" in message
    assert "replicas: Input should be a valid integer" in message
    assert "sekrit-value" not in message
    assert "sekrit-value" not in str(audit.events[0].model_dump())
    assert backend.prepared == []


async def test_unknown_arguments_are_refused_with_the_expected_names(parts: Any) -> None:
    gateway, _, _ = parts
    with pytest.raises(
        InvalidArguments, match=r"unknown argument\(s\) replica; expected labels, name, replicas"
    ):
        await gateway.call("thing_scale", {"name": "a", "replica": 2}, ALICE)


async def test_an_admitted_call_carries_its_validated_arguments_to_execution(
    parts: Any, backend: Backend
) -> None:
    gateway, _, _ = parts
    admitted = await gateway.admit("thing_scale", {"name": "a", "labels": {"app": "web"}}, ALICE)
    assert admitted.args == Args(name="a", labels={"app": "web"})
    with pytest.raises(InvalidArguments, match="labels: Input should be a valid dictionary"):
        # Validated once, by the model: JSON text is not decoded behind its back.
        await gateway.admit("thing_scale", {"name": "a", "labels": '{"app": "web"}'}, ALICE)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), 2**60])
async def test_numbers_json_cannot_carry_exactly_are_refused_at_admission(
    parts: Any, backend: Backend, number: float
) -> None:
    gateway, audit, _ = parts
    with pytest.raises(InvalidArguments, match="JSON cannot carry exactly"):
        await gateway.call("thing_scale", {"name": "a", "replicas": number}, ALICE)
    assert backend.prepared == []
    assert audit.kinds() == ["rejected_request"]


async def test_unreachable_policy_engine_denies_and_nothing_runs(parts: Any, backend: Backend) -> None:
    gateway, audit, queue = parts
    outcome = await gateway.call("thing_scale", {"name": "web"}, ALICE)
    assert outcome.status == "denied"
    assert outcome.is_error
    assert outcome.decision is not None
    assert [r.code for r in outcome.decision.reasons] == ["GW-POLICY-UNAVAILABLE"]
    assert backend.executed == []
    assert queue.actions == {}
    [event] = audit.events
    assert (event.kind, event.outcome, event.tool, event.subject) == (
        "decision",
        "deny",
        "thing_scale",
        "alice",
    )
    assert event.target == {"namespace": "dev", "kind": "Thing", "name": "web"}
    assert event.fingerprint


async def test_backend_errors_while_preparing_are_failures_not_decisions(
    parts: Any, backend: Backend
) -> None:
    gateway, audit, _ = parts
    missing = await gateway.call("thing_scale", {"name": "missing"}, ALICE)
    crash = await gateway.call("thing_scale", {"name": "crash"}, ALICE)
    assert missing.status == "failed"
    assert missing.error == "thing_scale could not be prepared: thing 'missing' does not exist"
    assert crash.status == "failed"
    assert crash.error is not None
    assert "abc123" not in crash.error
    assert audit.kinds() == ["failure", "failure"]
    assert backend.executed == []


async def test_check_raises_backend_errors_for_the_caller_to_report(parts: Any) -> None:
    gateway, _, _ = parts
    with pytest.raises(NotFound):
        await gateway.check("thing_scale", {"name": "missing"}, ALICE)


async def test_a_backend_check_outside_any_call_acts_as_anonymous(parts: Any) -> None:
    gateway, audit, _ = parts
    verdict = await gateway.check_as_caller("thing_scale", {"name": "web"})
    assert verdict["outcome"] == "deny"
    assert "object" not in verdict
    assert audit.events[-1].subject == "anonymous"
    assert audit.events[-1].detail == {"check": True}


def _stored_call(name: str) -> PlannedCall:
    action = ProposedAction(
        tool="thing_scale",
        backend="kubernetes",
        operation="scale",
        effect="write",
        target=Target(namespace="dev", kind="Thing", name=name),
        principal=ALICE,
    )
    return PlannedCall(
        tool="thing_scale", call_args={"name": name, "replicas": 1, "labels": {}}, actions=(action,)
    )


async def test_execute_runs_the_stored_call_and_redacts_with_the_obligations(
    parts: Any, backend: Backend
) -> None:
    gateway, _, _ = parts
    decision = Decision.model_validate({"outcome": "allow", "obligations": {"redact": ["/data"]}})
    result = await gateway.execute(_stored_call("web"), decision)
    assert result["data"] == {"k": "<redacted>"}
    assert "abc.def.ghi" not in result["note"]
    assert backend.executed == ["web"]


async def test_execute_turns_unexpected_crashes_into_backend_errors_without_details(parts: Any) -> None:
    gateway, _, _ = parts
    with pytest.raises(BackendError) as raised:
        await gateway.execute(_stored_call("boom"), Decision(outcome="allow"))
    assert "hunter2" not in str(raised.value)


async def test_execute_refuses_a_stored_call_that_no_longer_validates(parts: Any, backend: Backend) -> None:
    gateway, _, _ = parts
    call = _stored_call("web").model_copy(update={"call_args": {"name": "web", "replicas": 99}})
    with pytest.raises(BackendError, match="can no longer be run"):
        await gateway.execute(call, Decision(outcome="allow"))
    assert backend.executed == []


class FailingAudit(InMemoryAudit):
    async def record(self, event: Any) -> None:
        raise AuditError("the audit database is locked")


async def test_a_call_whose_decision_cannot_be_audited_runs_nothing(backend: Backend, tmp_path: Path) -> None:
    settings = Settings(opa_url=f"http://127.0.0.1:{free_port()}", db_path=tmp_path / "unused.db")
    registry = ToolRegistry()
    registry.register(backend.spec())
    async with PolicyClient(settings) as policy:
        gateway = Gateway(settings, registry, policy, InMemoryQueue(), FailingAudit())
        with pytest.raises(AuditError):
            await gateway.call("thing_scale", {"name": "web"}, ALICE)
    assert backend.executed == []
