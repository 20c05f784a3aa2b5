"""Speculative reads (``Settings.speculative_reads``): a speculative tool's read starts
while policy decides, and its result reaches the caller only when the call is allowed and
its decision recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes import InMemoryAudit, InMemoryQueue
from pydantic import BaseModel, ConfigDict

from gateway.contracts import Decision, Principal, ProposedAction, Reason, Target
from gateway.errors import AuditError
from gateway.pipeline import Gateway
from gateway.ports import AuditEvent
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec

ALICE = Principal(subject="alice", groups=("sre",), transport="stdio", authenticated=True)
DENY = Reason(code="T-1", rule="t", severity="high", effect="deny", message="no")


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class Reads:
    """A read tool that says when its read started, and a policy that answers only after
    being told to."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finished = False
        self.decide_now = asyncio.Event()
        self.decision = Decision(outcome="allow", obligations={"redact": ["secret"]})  # type: ignore[arg-type]
        self.read_started_before_decision: bool | None = None

    async def decide_all(self, actions: Sequence[ProposedAction]) -> Decision:
        await asyncio.wait_for(self.decide_now.wait(), 1)
        self.read_started_before_decision = self.started.is_set()
        return self.decision

    async def prepare(self, args: Args) -> list[Prepared]:
        return [Prepared(target=Target(namespace="dev", kind="Thing", name=args.name))]

    async def execute(self, args: Args, ctx: ExecutionContext) -> Any:
        assert ctx.call.actions[0].target.name == args.name
        self.started.set()
        self.decide_now.set()
        await asyncio.sleep(0.01)
        self.finished = True
        return {"name": args.name, "secret": "s3cr3t"}

    def spec(self, *, speculative: bool) -> ToolSpec[Args]:
        return ToolSpec(
            name="thing_get", title="Get a thing", description="Get a thing.", backend="kubernetes",
            operation="get", effect="read", args=Args, prepare=self.prepare, execute=self.execute,
            speculative=speculative,
        )  # fmt: skip


def _gateway(reads: Reads, tmp_path: Path, *, setting: bool, speculative: bool = True) -> tuple[Gateway, Any]:
    settings = Settings(db_path=tmp_path / "unused.db", speculative_reads=setting)
    registry = ToolRegistry()
    registry.register(reads.spec(speculative=speculative))
    audit = InMemoryAudit()
    return Gateway(settings, registry, reads, InMemoryQueue(), audit), audit


async def test_an_allowed_read_starts_while_policy_decides_and_returns_redacted(tmp_path: Path) -> None:
    reads = Reads()
    gateway, audit = _gateway(reads, tmp_path, setting=True)
    outcome = await gateway.call("thing_get", {"name": "a"}, ALICE)
    assert reads.read_started_before_decision is True
    assert outcome.status == "executed"
    assert outcome.result == {"name": "a", "secret": "<redacted>"}
    assert audit.kinds() == ["decision"]


async def test_a_denied_speculative_read_is_dropped_and_its_result_never_returned(tmp_path: Path) -> None:
    reads = Reads()
    reads.decision = Decision(outcome="deny", reasons=[DENY])
    gateway, audit = _gateway(reads, tmp_path, setting=True)
    outcome = await gateway.call("thing_get", {"name": "a"}, ALICE)
    assert reads.read_started_before_decision is True
    assert outcome.status == "denied"
    assert outcome.result is None
    assert audit.kinds() == ["decision"]
    await asyncio.sleep(0.05)
    assert not reads.finished  # cancelled as soon as the decision said no


async def test_off_by_default_a_read_waits_for_its_decision(tmp_path: Path) -> None:
    assert Settings().speculative_reads is False
    reads = Reads()
    reads.decide_now.set()  # nothing else would let policy answer
    gateway, _ = _gateway(reads, tmp_path, setting=False)
    outcome = await gateway.call("thing_get", {"name": "a"}, ALICE)
    assert reads.read_started_before_decision is False
    assert outcome.status == "executed"


async def test_only_tools_marked_speculative_start_early(tmp_path: Path) -> None:
    reads = Reads()
    reads.decide_now.set()
    gateway, _ = _gateway(reads, tmp_path, setting=True, speculative=False)
    await gateway.call("thing_get", {"name": "a"}, ALICE)
    assert reads.read_started_before_decision is False


async def test_a_read_whose_decision_cannot_be_audited_returns_nothing(tmp_path: Path) -> None:
    reads = Reads()
    gateway, audit = _gateway(reads, tmp_path, setting=True)

    async def failing(event: AuditEvent) -> None:
        raise AuditError("the audit database is locked")

    audit.record = failing
    with pytest.raises(AuditError):
        await gateway.call("thing_get", {"name": "a"}, ALICE)
    await asyncio.sleep(0.05)
    assert not reads.finished
