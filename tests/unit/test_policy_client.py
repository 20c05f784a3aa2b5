"""The policy client validates OPA's answer field by field and turns every failure into deny.

These tests pin the client's parsing and merging with canned HTTP answers (an
``httpx.MockTransport``); the same failure modes against the real ``opa`` binary are in
``tests/integration/test_gateway_policy_failures.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.contracts import (
    ApprovalRequirement,
    Decision,
    Obligations,
    Principal,
    ProposedAction,
    Reason,
    Target,
)
from gateway.errors import MalformedDecision, PolicyUnavailable
from gateway.policy import (
    CODE_MALFORMED,
    CODE_TIMEOUT,
    CODE_UNAVAILABLE,
    CODE_UNDEFINED,
    PolicyClient,
    merge_decisions,
)
from gateway.settings import Settings

ALICE = Principal(subject="alice", groups=("sre",), transport="stdio", authenticated=True)
ALLOW = {
    "outcome": "allow",
    "reasons": [],
    "obligations": {"redact": [], "max_log_lines": None},
    "warnings": [],
}


def _action(**changes: Any) -> ProposedAction:
    fields: dict[str, Any] = {
        "tool": "k8s_get",
        "backend": "kubernetes",
        "operation": "get",
        "effect": "read",
        "target": Target(namespace="dev", kind="Pod", name="web"),
        "principal": ALICE,
    }
    fields.update(changes)
    return ProposedAction(**fields)


def _reason(code: str, effect: str = "deny", message: str = "no") -> Reason:
    return Reason.model_validate(
        {"code": code, "rule": code.lower(), "severity": "high", "effect": effect, "message": message}
    )


def _client(handler: Callable[[httpx.Request], httpx.Response], **settings: Any) -> PolicyClient:
    return PolicyClient(Settings(**settings), transport=httpx.MockTransport(handler))


def _answer(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode())

    return handler


async def test_allow_keeps_bundle_revisions_and_decision_id() -> None:
    body = {
        "result": ALLOW,
        "decision_id": "d-1",
        "provenance": {"bundles": {"/tmp/b.tar.gz": {"revision": "r2"}, "other": {"revision": "r1"}}},
    }
    async with _client(_answer(body)) as client:
        decision = await client.decide(_action())
    assert decision.outcome == "allow"
    assert decision.bundle_revision == "r1,r2"
    assert decision.decision_id == "d-1"


async def test_request_posts_the_action_as_input_with_provenance() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"result": ALLOW})

    action = _action()
    async with _client(handler, decision_path="/gateway/decision/") as client:
        await client.decide(action)
    assert seen[0].url.path == "/v1/data/gateway/decision"
    assert "provenance" in seen[0].url.params
    assert json.loads(seen[0].content) == {"input": action.as_input()}


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({}, CODE_UNDEFINED, "undefined"),
        ({"result": "allow"}, CODE_MALFORMED, "string"),
        ({"result": [ALLOW]}, CODE_MALFORMED, "array"),
        ({"result": {**ALLOW, "outcome": "maybe"}}, CODE_MALFORMED, "outcome"),
        ({"result": {**ALLOW, "extra": 1}}, CODE_MALFORMED, "extra"),
        ({"result": {**ALLOW, "bundle_revision": "forged"}}, CODE_MALFORMED, "bundle_revision"),
        (
            {"result": {"outcome": "needs_approval", "approval": {"min_approvals": "2"}}},
            CODE_MALFORMED,
            "approval.min_approvals",
        ),
        ({"result": {"outcome": "needs_approval"}}, CODE_MALFORMED, "no approval block"),
        (
            {"result": {**ALLOW, "reasons": [_reason("X-1").model_dump()]}},
            CODE_MALFORMED,
            "effect deny",
        ),
        ({"result": {**ALLOW, "obligations": {"redact": "/data"}}}, CODE_MALFORMED, "obligations.redact"),
        ([1, 2], CODE_MALFORMED, "not a JSON object"),
    ],
)
async def test_unusable_answers_are_denied_with_a_reason_naming_the_failure(
    body: Any, code: str, says: str
) -> None:
    async with _client(_answer(body)) as client:
        decision = await client.decide(_action())
    assert decision.outcome == "deny"
    [reason] = decision.reasons
    assert (reason.code, reason.severity, reason.effect) == (code, "high", "deny")
    assert "policy engine failed" in reason.message
    assert says in reason.message


async def test_malformed_message_never_echoes_the_offending_value() -> None:
    body = {"result": {**ALLOW, "outcome": "s3cr3t-value"}}
    async with _client(_answer(body)) as client:
        decision = await client.decide(_action())
    assert "s3cr3t-value" not in decision.reasons[0].message


async def test_non_json_answer_is_malformed() -> None:
    async with _client(lambda r: httpx.Response(200, content=b"<html>")) as client:
        decision = await client.decide(_action())
    assert decision.reasons[0].code == CODE_MALFORMED


async def test_http_error_is_unavailable_and_names_status_and_opa_code() -> None:
    body = {"code": "internal_error", "message": "eval_conflict_error: details"}
    async with _client(_answer(body, status=500)) as client:
        with pytest.raises(PolicyUnavailable, match=r"HTTP 500 \(internal_error\)"):
            await client.evaluate(_action())
        decision = await client.decide(_action())
    assert decision.reasons[0].code == CODE_UNAVAILABLE
    assert "eval_conflict_error" not in decision.reasons[0].message


async def test_connection_refused_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _client(handler) as client:
        decision = await client.decide(_action())
    assert decision.outcome == "deny"
    assert decision.reasons[0].code == CODE_UNAVAILABLE


async def test_transport_timeout_is_a_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with _client(handler) as client:
        decision = await client.decide(_action())
    assert decision.reasons[0].code == CODE_TIMEOUT


async def test_undefined_raises_malformed_decision_from_evaluate() -> None:
    async with _client(_answer({})) as client:
        with pytest.raises(MalformedDecision):
            await client.evaluate(_action())


async def test_no_actions_is_a_deny() -> None:
    async with _client(_answer({"result": ALLOW})) as client:
        decision = await client.decide_all([])
    assert decision.outcome == "deny"


async def test_decide_all_asks_about_every_action_and_merges() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        name = json.loads(request.content)["input"]["target"]["name"]
        if name == "bad":
            return httpx.Response(
                200, json={"result": {"outcome": "deny", "reasons": [_reason("D-1").model_dump()]}}
            )
        return httpx.Response(200, json={"result": ALLOW})

    actions = [_action(target=Target(kind="Pod", name=n)) for n in ("a", "bad", "c")]
    async with _client(handler) as client:
        decision = await client.decide_all(actions)
    assert decision.outcome == "deny"
    assert [r.code for r in decision.reasons] == ["D-1"]


def _decision(outcome: str, **fields: Any) -> Decision:
    return Decision.model_validate({"outcome": outcome, **fields})


def test_merge_any_deny_wins_over_approval_and_allow() -> None:
    merged = merge_decisions(
        [
            _decision("allow"),
            _decision("needs_approval", reasons=[_reason("A", "needs_approval")], approval={}),
            _decision("deny", reasons=[_reason("D")]),
        ]
    )
    assert merged.outcome == "deny"
    assert [r.code for r in merged.reasons] == ["A", "D"]


def test_merge_needs_approval_over_allow() -> None:
    merged = merge_decisions([_decision("allow"), _decision("needs_approval", approval={})])
    assert merged.outcome == "needs_approval"


def test_merge_takes_the_strictest_approval_block() -> None:
    merged = merge_decisions(
        [
            _decision(
                "needs_approval",
                approval=ApprovalRequirement(
                    min_approvals=1, approver_groups=["sre"], ttl_seconds=600, allow_self_approval=True
                ),
            ),
            _decision(
                "needs_approval",
                approval=ApprovalRequirement(
                    min_approvals=2,
                    approver_groups=["dba", "sre"],
                    ttl_seconds=900,
                    allow_self_approval=False,
                ),
            ),
        ]
    )
    assert merged.approval == ApprovalRequirement(
        min_approvals=2, approver_groups=["sre", "dba"], ttl_seconds=600, allow_self_approval=False
    )


def test_merge_self_approval_only_if_every_block_allows_it() -> None:
    block = ApprovalRequirement(allow_self_approval=True)
    merged = merge_decisions([_decision("needs_approval", approval=block)] * 2)
    assert merged.approval is not None
    assert merged.approval.allow_self_approval is True


def test_merge_obligations_union_redact_and_min_log_lines() -> None:
    merged = merge_decisions(
        [
            _decision("allow", obligations=Obligations(redact=["/data"], max_log_lines=500)),
            _decision(
                "allow", obligations=Obligations(redact=["/data", "/items/*/data"], max_log_lines=None)
            ),
            _decision("allow", obligations=Obligations(redact=[], max_log_lines=100)),
        ]
    )
    assert merged.obligations == Obligations(redact=["/data", "/items/*/data"], max_log_lines=100)
    assert merged.approval is None


def test_merge_concatenates_warnings_once_and_joins_revisions() -> None:
    warn = _reason("W", "warn")
    merged = merge_decisions(
        [
            _decision("allow", warnings=[warn], bundle_revision="r1", decision_id="a"),
            _decision("allow", warnings=[warn], bundle_revision="r1", decision_id="b"),
        ]
    )
    assert merged.warnings == [warn]
    assert merged.bundle_revision == "r1"
    assert merged.decision_id == "a,b"
