"""Fail closed: whenever policy cannot give a usable decision, the call is denied with a
reason saying how the engine failed, and the backend runs nothing. Real ``opa`` processes
serve purpose-built broken policies; a tiny asyncio server plays a slow OPA."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_support import TEST_POLICY, EchoBackend, SlowOpa, running_policy, settings_for
from mcp import Client
from mcp_types import CallToolResult

from gateway.local.opa import OpaServer
from gateway.local.process import free_port
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = pytest.mark.integration

# Which broken answer the policy gives is chosen by the echoed text.
BROKEN_POLICY = """
package gateway

decision := {"outcome": "maybe"} if input.args.text == "unknown-outcome"

decision := {"outcome": "needs_approval", "approval": {"min_approvals": "2"}} if {
	input.args.text == "string-count"
}

decision := {"outcome": "allow", "sneaky": true} if input.args.text == "extra-key"

decision := {"outcome": "allow", "obligations": {"redact": [], "max_log_lines": 1.5}} if {
	input.args.text == "float-lines"
}

decision := {"outcome": "allow", "reasons": [{"code": "X", "rule": "x", "severity": "high"}]} if {
	input.args.text == "partial-reason"
}

decision := {"outcome": "needs_approval"} if input.args.text == "no-approval-block"

decision := "allow" if input.args.text == "not-an-object"

decision := {"outcome": "allow"} if input.args.text in {"conflict", "fine"}

decision := {"outcome": "deny"} if input.args.text == "conflict"
"""


@pytest.fixture(scope="module")
def broken_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    with running_policy(tmp_path_factory.mktemp("broken"), BROKEN_POLICY) as server:
        yield server


async def _read(settings: Settings, text: str) -> tuple[CallToolResult, EchoBackend]:
    backend = EchoBackend()
    async with Client(build_server(settings, backends=[backend.source()])) as client:
        result = await client.call_tool("echo_read", {"text": text})
    return result, backend


def _assert_denied(result: CallToolResult, backend: EchoBackend, code: str, says: str) -> None:
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["outcome"] == "deny"
    [reason] = result.structured_content["reasons"]
    assert (reason["code"], reason["severity"], reason["effect"]) == (code, "high", "deny")
    assert "policy engine failed" in reason["message"]
    assert says in reason["message"]
    assert backend.executed == []


async def test_the_broken_policy_answers_normally_for_a_good_input(
    broken_opa: OpaServer, tmp_path: Path
) -> None:
    # Guards the cases below: the same OPA and path give an allow when the document is fine.
    result, backend = await _read(settings_for(broken_opa.url, tmp_path), "fine")
    assert not result.is_error
    assert backend.executed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("unknown-outcome", "outcome"),
        ("string-count", "approval.min_approvals"),
        ("extra-key", "sneaky"),
        ("float-lines", "obligations.max_log_lines"),
        ("partial-reason", "reasons.0"),
        ("no-approval-block", "no approval block"),
        ("not-an-object", "is a string"),
    ],
)
async def test_a_malformed_decision_is_denied(
    broken_opa: OpaServer, tmp_path: Path, text: str, says: str
) -> None:
    result, backend = await _read(settings_for(broken_opa.url, tmp_path), text)
    _assert_denied(result, backend, "GW-POLICY-MALFORMED", says)


async def test_an_undefined_decision_is_denied(broken_opa: OpaServer, tmp_path: Path) -> None:
    result, backend = await _read(settings_for(broken_opa.url, tmp_path), "no rule matches this")
    _assert_denied(result, backend, "GW-POLICY-UNDEFINED", "undefined")


async def test_a_policy_path_with_no_rule_is_denied(broken_opa: OpaServer, tmp_path: Path) -> None:
    settings = settings_for(broken_opa.url, tmp_path, decision_path="gateway/not_a_rule")
    result, backend = await _read(settings, "fine")
    _assert_denied(result, backend, "GW-POLICY-UNDEFINED", "data.gateway.not_a_rule is undefined")


async def test_an_evaluation_error_in_opa_is_denied(broken_opa: OpaServer, tmp_path: Path) -> None:
    result, backend = await _read(settings_for(broken_opa.url, tmp_path), "conflict")
    _assert_denied(result, backend, "GW-POLICY-UNAVAILABLE", "HTTP 500")


async def test_opa_not_running_is_denied(tmp_path: Path) -> None:
    result, backend = await _read(settings_for(f"http://127.0.0.1:{free_port()}", tmp_path), "fine")
    _assert_denied(result, backend, "GW-POLICY-UNAVAILABLE", "could not be reached")


async def test_opa_answering_after_the_timeout_is_denied_in_time(tmp_path: Path) -> None:
    async with SlowOpa(delay=3.0) as slow:
        settings = settings_for(slow.url, tmp_path, opa_timeout_seconds=0.2)
        started = time.monotonic()
        result, backend = await _read(settings, "fine")
        elapsed = time.monotonic() - started
    _assert_denied(result, backend, "GW-POLICY-TIMEOUT", "within 0.2s")
    assert elapsed < 2.5


async def test_opa_stopped_mid_session_turns_allow_into_deny(tmp_path: Path) -> None:
    with running_policy(tmp_path / "opa", TEST_POLICY) as opa:
        backend = EchoBackend()
        async with Client(
            build_server(settings_for(opa.url, tmp_path), backends=[backend.source()])
        ) as client:
            before = await client.call_tool("echo_read", {"text": "one"})
            opa.stop()
            after = await client.call_tool("echo_read", {"text": "two"})
    assert not before.is_error
    assert after.is_error
    assert after.structured_content is not None
    assert after.structured_content["reasons"][0]["code"] == "GW-POLICY-UNAVAILABLE"
    assert backend.executed == [{"tool": "echo_read", "text": "one"}]
