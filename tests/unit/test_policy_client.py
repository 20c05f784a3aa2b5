"""The policy client validates OPA's answer field by field and turns every failure into deny.

These tests pin the client's parsing, error mapping and merging against a stand-in OPA (a
real aiohttp server on a loopback port, ``opa_support``) that can give answers the real
binary will not give on demand; the same failure modes against the real ``opa`` binary are in
``tests/integration/test_gateway_policy_failures.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from opa_support import FakeOpa, answer, fake_opa, raw

from gateway.contracts import (
    ApprovalRequirement,
    Decision,
    Obligations,
    Principal,
    ProposedAction,
    Reason,
    Target,
)
from gateway.decisions import merge_decisions
from gateway.errors import ConfigError, MalformedDecision, PolicyUnavailable, UndefinedDecision
from gateway.local.process import free_port
from gateway.policy import (
    CODE_MALFORMED,
    CODE_TIMEOUT,
    CODE_UNAVAILABLE,
    CODE_UNDEFINED,
    PolicyClient,
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


@pytest.fixture
async def opa() -> AsyncIterator[FakeOpa]:
    async with fake_opa() as fake:
        yield fake


def _client(opa: FakeOpa, **settings: Any) -> PolicyClient:
    return PolicyClient(Settings(opa_url=opa.url, **settings))


async def test_allow_keeps_bundle_revisions_and_decision_id(opa: FakeOpa) -> None:
    opa.handler = answer(
        {
            "result": ALLOW,
            "decision_id": "d-1",
            "provenance": {"bundles": {"/tmp/b.tar.gz": {"revision": "r2"}, "other": {"revision": "r1"}}},
        }
    )
    async with _client(opa) as client:
        decision = await client.decide(_action())
    assert decision.outcome == "allow"
    assert decision.bundle_revision == "r1,r2"
    assert decision.decision_id == "d-1"


async def test_request_posts_the_action_as_input_with_provenance(opa: FakeOpa) -> None:
    opa.handler = answer({"result": ALLOW})
    action = _action()
    async with _client(opa, decision_path="/gateway/decision/") as client:
        await client.decide(action)
    [seen] = opa.requests
    assert (seen.method, seen.path) == ("POST", "/v1/data/gateway/decision")
    # OPA reports provenance only when the parameter reads "true" in any case.
    assert seen.query["provenance"].lower() == "true"
    assert seen.body == {"input": action.as_input()}
    assert client.url == f"{opa.url}/v1/data/gateway/decision?provenance=True"


@pytest.mark.parametrize(
    ("decision_path", "asked"),
    [
        ("policies/gateway/v2/decision", "/v1/data/policies/gateway/v2/decision"),
        ("gateway", "/v1/data/gateway"),
    ],
)
async def test_any_depth_of_decision_path_is_asked_at_that_path(
    opa: FakeOpa, decision_path: str, asked: str
) -> None:
    opa.handler = answer({})
    async with _client(opa, decision_path=decision_path) as client:
        decision = await client.decide(_action())
    assert [r.path for r in opa.requests] == [asked]
    assert f"data.{decision_path.replace('/', '.')} is undefined" in decision.reasons[0].message


@pytest.mark.parametrize(
    ("opa_url", "says"),
    [
        ("http://127.0.0.1:8181/opa", "path"),
        ("http://127.0.0.1:8181/?x=1", "query"),
        ("http://user:s3cr3t@127.0.0.1:8181", "credentials"),
        ("unix:///run/opa.sock", "http://host"),
        ("http://127.0.0.1:99999", "port"),
    ],
)
def test_an_opa_url_the_client_cannot_honour_is_a_config_error(opa_url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        PolicyClient(Settings(opa_url=opa_url))
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("decision_path", ["gateway//decision", "gateway.decision", "gate way/decision", "/"])
def test_a_decision_path_that_is_not_plain_names_is_a_config_error(decision_path: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_DECISION_PATH"):
        PolicyClient(Settings(decision_path=decision_path))


@pytest.mark.parametrize(
    ("opa_url", "url"),
    [
        ("https://opa.internal", "https://opa.internal:443/v1/data/gateway/decision?provenance=True"),
        ("http://[::1]:8181/", "http://[::1]:8181/v1/data/gateway/decision?provenance=True"),
    ],
)
def test_default_ports_and_ipv6_hosts_make_the_endpoint(opa_url: str, url: str) -> None:
    assert PolicyClient(Settings(opa_url=opa_url)).url == url


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
    opa: FakeOpa, body: Any, code: str, says: str
) -> None:
    opa.handler = answer(body)
    async with _client(opa) as client:
        decision = await client.decide(_action())
    assert decision.outcome == "deny"
    [reason] = decision.reasons
    assert (reason.code, reason.severity, reason.effect) == (code, "high", "deny")
    assert "policy engine failed" in reason.message
    assert says in reason.message


async def test_malformed_message_never_echoes_the_offending_value(opa: FakeOpa) -> None:
    opa.handler = answer({"result": {**ALLOW, "outcome": "s3cr3t-value"}})
    async with _client(opa) as client:
        decision = await client.decide(_action())
    assert "s3cr3t-value" not in decision.reasons[0].message


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"<html>", "text/html", "wrong content type"),
        (b"<html>", "application/json", "not JSON"),
        (b'{"result": {"outcome": "allow"', "application/json", "not JSON"),
        (b"\xff\xfe", "application/json", "not JSON"),
        (b"", "application/json", "not a JSON object"),
    ],
)
async def test_an_answer_that_is_not_json_is_malformed(
    opa: FakeOpa, body: bytes, content_type: str, says: str
) -> None:
    opa.handler = raw(body, content_type)
    async with _client(opa) as client:
        with pytest.raises(MalformedDecision, match=says):
            await client.evaluate(_action())
        decision = await client.decide(_action())
    assert decision.reasons[0].code == CODE_MALFORMED


async def test_http_error_is_unavailable_and_names_the_status_only(opa: FakeOpa) -> None:
    opa.handler = answer({"code": "internal_error", "message": "eval_conflict_error: details"}, status=500)
    async with _client(opa) as client:
        with pytest.raises(PolicyUnavailable, match=r"OPA answered HTTP 500$"):
            await client.evaluate(_action())
        decision = await client.decide(_action())
    [reason] = decision.reasons
    assert reason.code == CODE_UNAVAILABLE
    assert "eval_conflict_error" not in reason.message
    # aiohttp's text (reason phrase, URL) stays out of it.
    assert "Internal Server Error" not in reason.message
    assert opa.url not in reason.message
    # Never retried, even on a status opa-python-client would retry by default.
    assert len(opa.requests) == 2


async def test_connection_refused_is_unavailable_and_names_only_the_error_type() -> None:
    port = free_port()
    async with PolicyClient(Settings(opa_url=f"http://127.0.0.1:{port}")) as client:
        decision = await client.decide(_action())
    assert decision.outcome == "deny"
    [reason] = decision.reasons
    assert reason.code == CODE_UNAVAILABLE
    assert reason.message.endswith("OPA could not be reached (ClientConnectorError)")
    assert str(port) not in reason.message


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
async def test_an_answer_not_complete_in_time_is_a_timeout(opa: FakeOpa, trickle: bool) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if trickle:
            await response.prepare(request)
            await response.write(b'{"result": ')
        await opa.released.wait()
        return response

    opa.handler = slow
    async with _client(opa, opa_timeout_seconds=0.2) as client:
        started = time.monotonic()
        decision = await client.decide(_action())
        elapsed = time.monotonic() - started
    assert decision.reasons[0].code == CODE_TIMEOUT
    assert "within 0.2s" in decision.reasons[0].message
    assert elapsed < 1.0


async def test_a_client_that_is_not_open_denies(opa: FakeOpa) -> None:
    opa.handler = answer({"result": ALLOW})
    client = _client(opa)
    decision = await client.decide(_action())
    assert decision.reasons[0].code == CODE_UNAVAILABLE
    assert "not open" in decision.reasons[0].message
    async with client:
        assert (await client.decide(_action())).outcome == "allow"
    assert (await client.decide(_action())).outcome == "deny"
    assert len(opa.requests) == 1


async def test_undefined_raises_malformed_decision_from_evaluate(opa: FakeOpa) -> None:
    opa.handler = answer({})
    async with _client(opa) as client:
        with pytest.raises(MalformedDecision):
            await client.evaluate(_action())


async def test_no_actions_is_a_deny(opa: FakeOpa) -> None:
    opa.handler = answer({"result": ALLOW})
    async with _client(opa) as client:
        decision = await client.decide_all([])
    assert decision.outcome == "deny"
    assert opa.requests == []


async def test_decide_all_asks_about_every_action_and_merges(opa: FakeOpa) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        name = (await request.json())["input"]["target"]["name"]
        if name == "bad":
            return web.json_response(
                {"result": {"outcome": "deny", "reasons": [_reason("D-1").model_dump()]}}
            )
        await asyncio.sleep(0)
        return web.json_response({"result": ALLOW})

    opa.handler = handler
    actions = [_action(target=Target(kind="Pod", name=n)) for n in ("a", "bad", "c")]
    async with _client(opa) as client:
        decision = await client.decide_all(actions)
    assert decision.outcome == "deny"
    assert [r.code for r in decision.reasons] == ["D-1"]
    assert sorted(r.body["input"]["target"]["name"] for r in opa.requests) == ["a", "bad", "c"]


async def test_evaluate_all_raises_the_engines_failure_instead_of_denying(opa: FakeOpa) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        name = (await request.json())["input"]["target"]["name"]
        return web.json_response({} if name == "undefined" else {"result": ALLOW})

    opa.handler = handler
    actions = [_action(target=Target(kind="Pod", name=n)) for n in ("a", "undefined")]
    async with _client(opa) as client:
        with pytest.raises(UndefinedDecision, match="undefined for this input") as raised:
            await client.evaluate_all(actions)
        assert raised.value.code == "GW-POLICY-UNDEFINED"
        with pytest.raises(MalformedDecision, match="no action"):
            await client.evaluate_all([])
        merged = await client.evaluate_all(actions[:1] * 2)
    assert merged.outcome == "allow"


async def test_evaluate_all_with_the_engine_down_raises_unavailable() -> None:
    settings = Settings(opa_url=f"http://127.0.0.1:{free_port()}", opa_timeout_seconds=2.0)
    async with PolicyClient(settings) as client:
        with pytest.raises(PolicyUnavailable, match="could not be reached") as raised:
            await client.evaluate_all([_action()])
    assert raised.value.code == "GW-POLICY-UNAVAILABLE"


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


async def test_cluster_environments_are_asked_beside_the_decision(opa: FakeOpa) -> None:
    opa.handler = answer({"result": {"prod-eu": "production"}})
    async with _client(opa, decision_path="policies/gateway/decision") as client:
        found = await client.cluster_environments(["sandbox", "prod-eu"])
    assert found == {"prod-eu": "production"}
    [seen] = opa.requests
    assert (seen.path, seen.body) == (
        "/v1/data/policies/gateway/cluster_environments",
        {"input": {"clusters": ["sandbox", "prod-eu"]}},
    )


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        ({}, UndefinedDecision, "data.gateway.cluster_environments is undefined"),
        ({"result": ["production"]}, MalformedDecision, "not an object of environment names"),
        ({"result": {"prod-eu": 1}}, MalformedDecision, "not an object of environment names"),
    ],
)
async def test_cluster_environments_that_cannot_be_read_raise(
    opa: FakeOpa, body: Any, error: type[Exception], says: str
) -> None:
    opa.handler = answer(body)
    async with _client(opa) as client:
        with pytest.raises(error, match=says):
            await client.cluster_environments(["prod-eu"])


async def test_cluster_environments_with_opa_down_raise_unavailable() -> None:
    async with PolicyClient(Settings(opa_url=f"http://127.0.0.1:{free_port()}")) as client:
        with pytest.raises(PolicyUnavailable, match="could not be reached"):
            await client.cluster_environments(["prod-eu"])
