"""Tool calls through a real MCP client session (in memory) against the real ``opa`` binary
serving a purpose-built test policy: allow, deny, needs approval, bad input, backend errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from gateway_support import EchoBackend, running_policy, settings_for
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway import contracts
from gateway.contracts import Principal, Target, fingerprint
from gateway.local.opa import OpaServer
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.queue.approvals import approve
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.runtime import CheckFn, ToolSource
from gateway.server import WAIT_META_KEY, build_server
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolSpec

pytestmark = pytest.mark.integration

BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)


@pytest.fixture
def backend() -> EchoBackend:
    return EchoBackend()


async def _audit(settings: Settings) -> list[Any]:
    store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
    try:
        return list(reversed(await store.audit.recent(limit=100)))
    finally:
        await store.close()


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def test_tools_are_listed_with_schemas_from_their_args_and_truthful_annotations(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"echo_read", "echo_scale", "echo_delete", "gateway_check", "gateway_action"} <= set(tools)
    scale = tools["echo_scale"]
    assert scale.input_schema["required"] == ["name", "replicas"]
    assert scale.input_schema["properties"]["replicas"]["minimum"] == 0
    assert scale.input_schema["properties"]["replicas"]["description"] == "Desired replicas."
    assert "gateway_context" not in scale.input_schema["properties"]
    assert scale.description == "Scale an echo."
    assert scale.annotations is not None
    assert (scale.annotations.read_only_hint, scale.annotations.idempotent_hint) == (False, True)
    delete = tools["echo_delete"].annotations
    assert delete is not None
    assert delete.destructive_hint is True
    read = tools["echo_read"].annotations
    assert read is not None
    assert read.read_only_hint is True


async def test_allowed_read_returns_the_result_redacted_as_structured_content(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("echo_read", {"text": "hello"})
    assert not result.is_error
    body = result.structured_content
    assert body is not None
    assert body["text"] == "hello"
    assert body["token"] == "<redacted>"  # the decision's redact obligation
    assert body["secret"]["data"] == {"password": "<redacted>"}  # always, whatever the policy says
    assert body["max_log_lines"] == 10  # the backend saw the decision's obligations
    assert "hunter2" not in _text(result)
    assert "T-WARN" in _text(result)  # policy warnings reach the model
    assert backend.executed == [{"tool": "echo_read", "text": "hello"}]


class _CountedArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Name of the thing.")
    validations: ClassVar[int] = 0

    @model_validator(mode="after")
    def _count(self) -> _CountedArgs:
        type(self).validations += 1
        return self


def _counted_source(seen: list[int]) -> ToolSource:
    async def prepare(args: _CountedArgs) -> list[Prepared]:
        seen.append(id(args))
        return [Prepared(target=Target(cluster="mem", namespace="dev", kind="Echo", name=args.name))]

    async def execute(args: _CountedArgs, ctx: ExecutionContext) -> dict[str, Any]:
        seen.append(id(args))
        return {"name": args.name}

    spec = ToolSpec(
        name="counted_read",
        title="Counted read",
        description="A read that counts its validations.",
        backend="kubernetes",
        operation="get",
        effect="read",
        args=_CountedArgs,
        prepare=prepare,
        execute=execute,
    )

    @asynccontextmanager
    async def source(settings: Settings, check: CheckFn) -> AsyncIterator[list[ToolSpec[Any]]]:
        yield [spec]

    return source


async def test_a_call_is_validated_once_and_runs_with_the_arguments_admission_validated(
    settings: Settings,
) -> None:
    seen: list[int] = []
    _CountedArgs.validations = 0
    async with Client(build_server(settings, backends=[_counted_source(seen)])) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("counted_read", {"name": "web"})
    assert not result.is_error, _text(result)
    assert listed["counted_read"].input_schema == _CountedArgs.model_json_schema()
    assert _CountedArgs.validations == 1
    assert len(seen) == 2
    assert seen[0] == seen[1]  # prepare and execute got the one validated model


async def test_a_parked_call_is_fingerprinted_once(
    settings: Settings, backend: EchoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[str] = []

    def counting(value: Any) -> str:
        computed.append(fingerprint(value))
        return computed[-1]

    monkeypatch.setattr(contracts, "fingerprint", counting)
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("echo_scale", {"name": "web", "replicas": 3})
    assert result.structured_content is not None
    assert result.structured_content["outcome"] == "needs_approval"
    events = await _audit(settings)
    [decision] = [e for e in events if e.kind == "decision"]
    [parked] = [e for e in events if e.kind == "parked"]  # written with the queue's row
    assert computed == [decision.fingerprint] == [parked.fingerprint]


async def test_denied_call_lists_every_reason_and_executes_nothing(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("echo_delete", {"name": "web", "replicas": 0})
    assert result.is_error
    assert "T-DELETE" in _text(result)
    assert "deletes are not allowed here" in _text(result)
    assert result.structured_content is not None
    assert result.structured_content["outcome"] == "deny"
    assert backend.executed == []
    [decision] = [e for e in await _audit(settings) if e.kind == "decision"]
    assert (decision.tool, decision.subject, decision.outcome) == ("echo_delete", "alice", "deny")
    assert decision.bundle_revision == "test-rev"
    assert decision.fingerprint
    assert decision.target["name"] == "web"
    assert [r["code"] for r in decision.reasons] == ["T-DELETE"]


async def test_write_needing_approval_is_parked_and_runs_once_after_a_human_approves(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("echo_scale", {"name": "web", "replicas": 3})
        assert not result.is_error
        body = result.structured_content
        assert body is not None
        assert body["outcome"] == "needs_approval"
        assert body["state"] == "pending"
        assert body["expires_at"]
        action_id = body["action_id"]
        assert f"gateway queue approve {action_id}" in _text(result)
        assert "T-WRITE" in _text(result)
        assert backend.executed == []

        store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
        async with PolicyClient(settings) as policy:
            approved = await approve(store, policy, action_id, BOB)
        await store.close()
        assert approved.action.state == ActionState.APPROVED

        state = await _wait_for_state(client, action_id, "succeeded")
    assert state["result"] == {"name": "web", "replicas": 3}
    assert backend.executed == [{"tool": "echo_scale", "name": "web", "replicas": 3}]


async def _wait_for_state(client: Client, action_id: str, wanted: str) -> dict[str, Any]:
    for _ in range(100):
        reply = await client.call_tool("gateway_action", {"action_id": action_id})
        assert reply.structured_content is not None
        if reply.structured_content["state"] == wanted:
            return reply.structured_content
        await asyncio.sleep(0.1)
    raise AssertionError(f"action {action_id} never reached {wanted}")


async def test_a_parked_actions_result_is_shown_only_to_its_requester(
    opa: OpaServer, tmp_path: Path, backend: EchoBackend
) -> None:
    alice = settings_for(opa.url, tmp_path)
    async with Client(build_server(alice, backends=[backend.source()])) as client:
        parked = await client.call_tool("echo_scale", {"name": "api", "replicas": 2})
        assert parked.structured_content is not None
        action_id = parked.structured_content["action_id"]
        store = await QueueStore.open(alice.db_path, sealer=Sealer.from_settings(alice, create=False))
        async with PolicyClient(alice) as policy:
            await approve(store, policy, action_id, BOB)
        await store.close()
        await _wait_for_state(client, action_id, "succeeded")

    mallory = alice.model_copy(update={"subject": "mallory"})
    async with Client(build_server(mallory, backends=[EchoBackend().source()])) as client:
        reply = await client.call_tool("gateway_action", {"action_id": action_id})
    assert reply.structured_content == {"action_id": action_id, "state": "succeeded"}


async def test_a_caller_may_wait_for_approval_with_progress_and_get_the_result(
    settings: Settings, backend: EchoBackend
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def approve_when_parked() -> str | None:
        store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
        try:
            async with PolicyClient(settings) as policy:
                for _ in range(100):
                    pending = await store.list_actions(state=ActionState.PENDING)
                    if pending:
                        await approve(store, policy, pending[0].id, BOB)
                        return pending[0].id
                    await asyncio.sleep(0.05)
        finally:
            await store.close()

    async with Client(build_server(settings, backends=[backend.source()])) as client:
        approver = asyncio.create_task(approve_when_parked())
        result = await client.call_tool(
            "echo_scale",
            {"name": "db", "replicas": 1},
            progress_callback=on_progress,
            meta={WAIT_META_KEY: 20},  # type: ignore[typeddict-unknown-key]
        )
        await approver
    assert not result.is_error, _text(result)
    # An executed write names its action id: the one gateway_rollback takes.
    assert result.structured_content == {"name": "db", "replicas": 1, "action_id": approver.result()}
    assert progress, "no progress notification while waiting"
    assert progress[0][1] == 20
    assert "waiting for approval" in (progress[0][2] or "")


async def test_unknown_tool_is_a_protocol_error_and_is_audited(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        with pytest.raises(MCPError, match="unknown tool 'echo_nope'") as raised:
            await client.call_tool("echo_nope", {})
    assert raised.value.error.code == -32602
    [event] = await _audit(settings)
    assert (event.kind, event.tool, event.subject) == ("rejected_request", "echo_nope", "alice")


async def test_oversized_arguments_are_a_protocol_error_and_reach_nothing(
    opa: OpaServer, tmp_path: Path, backend: EchoBackend
) -> None:
    settings = settings_for(opa.url, tmp_path, max_argument_bytes=2048)
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        with pytest.raises(MCPError, match="above the limit of 2048 bytes"):
            await client.call_tool("echo_read", {"text": "x" * 5000})
    assert backend.prepared == 0
    assert [e.kind for e in await _audit(settings)] == ["rejected_request"]


async def test_invalid_arguments_name_the_fields_and_never_echo_values(
    settings: Settings, backend: EchoBackend
) -> None:
    secret = "s3cr3t-value-zz"
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        wrong_type = await client.call_tool("echo_scale", {"name": "web", "replicas": secret})
        out_of_range = await client.call_tool("echo_scale", {"name": secret, "replicas": 500})
        unknown = await client.call_tool("echo_scale", {"name": "web", "replicas": 1, "password": secret})
        missing = await client.call_tool("echo_scale", {"name": "web"})
    for result in (wrong_type, out_of_range, unknown, missing):
        assert result.is_error
        assert secret not in _text(result)
        assert "input_value" not in _text(result)
        assert "Traceback" not in _text(result)
    assert "replicas: Input should be a valid integer" in _text(wrong_type)
    assert "replicas: Input should be less than or equal to 100" in _text(out_of_range)
    assert "unknown argument(s) password" in _text(unknown)
    assert "replicas: Field required" in _text(missing)
    assert backend.prepared == 0
    events = await _audit(settings)
    assert {e.kind for e in events} == {"rejected_request"}
    assert secret not in json.dumps([e.model_dump(mode="json") for e in events])


async def test_json_text_for_an_object_argument_is_refused_by_the_one_validation(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool(
            "gateway_check", {"tool": "echo_delete", "arguments": '{"name": "web", "replicas": 1}'}
        )
    assert result.is_error
    assert "arguments: Input should be a valid dictionary" in _text(result)
    assert [e.kind for e in await _audit(settings)] == ["rejected_request"]


async def test_backend_errors_while_preparing_are_clear_errors_and_not_decided(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        missing = await client.call_tool("echo_scale", {"name": "missing", "replicas": 1})
        forbidden = await client.call_tool("echo_scale", {"name": "forbidden", "replicas": 1})
        crash = await client.call_tool("echo_scale", {"name": "crash", "replicas": 1})
    assert missing.is_error
    assert "echo 'missing' does not exist" in _text(missing)
    assert "you may not scale 'forbidden'" in _text(forbidden)
    assert crash.is_error
    assert "s3cr3t" not in _text(crash)
    assert "failed unexpectedly" in _text(crash)
    events = await _audit(settings)
    assert [e.kind for e in events] == ["failure", "failure", "failure"]
    assert backend.executed == []


async def test_gateway_check_returns_the_decision_without_executing_or_parking(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool(
            "gateway_check", {"tool": "echo_scale", "arguments": {"name": "w", "replicas": 5}}
        )
        unknown = await client.call_tool("gateway_check", {"tool": "nope", "arguments": {}})
    assert not result.is_error
    body = result.structured_content
    assert body is not None
    assert body["outcome"] == "needs_approval"
    assert body["approval"]["min_approvals"] == 1
    assert [r["code"] for r in body["reasons"]] == ["T-WRITE"]
    assert "object" not in body
    assert "current" not in body
    assert "replicas" not in json.dumps(body)  # no images, no arguments echoed
    assert unknown.is_error
    assert "unknown tool 'nope'" in _text(unknown)
    assert backend.executed == []
    store = await QueueStore.open(settings.db_path, sealer=Sealer.from_settings(settings, create=False))
    try:
        assert await store.list_actions() == []
    finally:
        await store.close()


async def test_a_backend_can_ask_policy_as_the_current_caller(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("echo_validate", {"text": "web"})
    assert result.structured_content == {"verdict": "needs_approval"}
    checks = [e for e in await _audit(settings) if e.detail.get("check")]
    assert [(e.tool, e.subject) for e in checks] == [("echo_scale", "alice")]


async def test_gateway_action_for_an_unknown_id_is_an_error(settings: Settings, backend: EchoBackend) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("gateway_action", {"action_id": "0000-no-such"})
    assert result.is_error
    assert "no action has id" in _text(result)


async def test_a_wait_is_bounded_by_settings_and_returns_the_pending_action(
    opa: OpaServer, tmp_path: Path, backend: EchoBackend
) -> None:
    settings = settings_for(opa.url, tmp_path, max_approval_wait_seconds=0.5)
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        started = asyncio.get_running_loop().time()
        result = await client.call_tool(
            "echo_scale",
            {"name": "web", "replicas": 1},
            meta={WAIT_META_KEY: 600},  # type: ignore[typeddict-unknown-key]
        )
        waited = asyncio.get_running_loop().time() - started
    assert result.structured_content is not None
    assert result.structured_content["state"] == "pending"
    assert 0.4 <= waited < 5
    assert backend.executed == []


async def test_bad_arguments_to_the_gateways_own_tools_are_refused_and_audited(
    settings: Settings, backend: EchoBackend
) -> None:
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("gateway_action", {"action_id": "../../etc/passwd"})
    assert result.is_error
    assert "action_id: String should match pattern" in _text(result)
    assert "passwd" not in _text(result)
    [event] = await _audit(settings)
    assert (event.kind, event.tool) == ("rejected_request", "gateway_action")


async def test_the_decision_id_is_kept_when_opa_logs_decisions(tmp_path: Path, backend: EchoBackend) -> None:
    with running_policy(tmp_path / "opa", decision_logs=True) as logging_opa:
        settings = settings_for(logging_opa.url, tmp_path)
        async with Client(build_server(settings, backends=[backend.source()])) as client:
            await client.call_tool("echo_delete", {"name": "web", "replicas": 1})
    [decision] = [e for e in await _audit(settings) if e.kind == "decision"]
    assert decision.decision_id
    assert decision.bundle_revision == "test-rev"
