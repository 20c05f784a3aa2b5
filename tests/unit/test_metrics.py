"""The metrics registry and its Prometheus text exposition."""

from __future__ import annotations

from opa_support import answers, fake_opa
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.contracts import Principal, ProposedAction, Target
from gateway.metrics import Metrics
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.settings import Settings


def _samples(metrics: Metrics) -> list[Sample]:
    return [s for family in text_string_to_metric_families(metrics.render().decode()) for s in family.samples]


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    for sample in _samples(metrics):
        if sample.name == name and sample.labels == labels:
            return sample.value
    return None


def test_tool_calls_are_counted_by_tool_and_outcome() -> None:
    metrics = Metrics()
    metrics.record_call("k8s_delete", "needs_approval")
    metrics.record_call("k8s_delete", "needs_approval")
    metrics.record_call("k8s_get", "allow")
    assert _value(metrics, "gateway_tool_calls_total", tool="k8s_delete", outcome="needs_approval") == 2
    assert _value(metrics, "gateway_tool_calls_total", tool="k8s_get", outcome="allow") == 1
    assert _value(metrics, "gateway_tool_calls_total", tool="k8s_get", outcome="deny") is None


def test_unexpected_label_values_are_counted_as_other() -> None:
    metrics = Metrics()
    metrics.record_call('x"} 1\nsecret{a="', "maybe")
    metrics.record_call("K8S_GET", "allow")
    metrics.record_opa_error("exploded")
    text = metrics.render().decode()
    assert "secret" not in text
    assert "maybe" not in text
    assert _value(metrics, "gateway_tool_calls_total", tool="other", outcome="other") == 1
    assert _value(metrics, "gateway_tool_calls_total", tool="other", outcome="allow") == 1
    assert _value(metrics, "gateway_opa_errors_total", kind="other") == 1


def test_opa_error_series_exist_before_the_first_error() -> None:
    metrics = Metrics()
    for kind in ("unavailable", "timeout", "undefined", "malformed"):
        assert _value(metrics, "gateway_opa_errors_total", kind=kind) == 0
    metrics.record_opa_error("timeout")
    assert _value(metrics, "gateway_opa_errors_total", kind="timeout") == 1


def test_decision_latency_lands_in_the_histogram_buckets() -> None:
    metrics = Metrics()
    metrics.observe_decision(0.0004)
    metrics.observe_decision(0.02)
    metrics.observe_decision(-1.0)  # a clock step never makes a negative observation
    assert _value(metrics, "gateway_decision_seconds_count") == 3
    assert _value(metrics, "gateway_decision_seconds_bucket", le="0.0005") == 2
    assert _value(metrics, "gateway_decision_seconds_bucket", le="0.025") == 3


def test_queue_depth_reports_every_state_and_whether_the_queue_was_read() -> None:
    metrics = Metrics()
    metrics.set_queue_depth({"pending": 3, "approved": 1})
    assert _value(metrics, "gateway_queue_actions", state="pending") == 3
    assert _value(metrics, "gateway_queue_actions", state="approved") == 1
    for state in ActionState:
        assert _value(metrics, "gateway_queue_actions", state=state.value) is not None
    assert _value(metrics, "gateway_queue_up") == 1
    metrics.set_queue_depth(None)
    assert _value(metrics, "gateway_queue_up") == 0


def test_auth_failures_are_counted_by_reason() -> None:
    metrics = Metrics()
    metrics.record_auth_failure("invalid_token")
    assert _value(metrics, "gateway_auth_failures_total", reason="invalid_token") == 1
    assert _value(metrics, "gateway_auth_failures_total", reason="missing_token") == 0


def test_two_registries_do_not_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.record_call("k8s_get", "allow")
    assert _value(second, "gateway_tool_calls_total", tool="k8s_get", outcome="allow") is None


async def test_policy_client_times_every_decision_and_counts_failures_by_kind() -> None:
    metrics = Metrics()
    action = ProposedAction(
        tool="k8s_get",
        backend="kubernetes",
        operation="get",
        effect="read",
        target=Target(namespace="dev", kind="Pod", name="web"),
        principal=Principal(subject="alice", transport="stdio", authenticated=True),
    )
    replies = answers(
        [
            (200, {"result": {"outcome": "allow"}}),
            (200, {}),  # undefined decision
            (500, {"code": "internal_error"}),
        ]
    )
    async with fake_opa(replies) as opa, PolicyClient(Settings(opa_url=opa.url), metrics=metrics) as client:
        outcomes = [(await client.decide(action)).outcome for _ in range(3)]
    assert outcomes == ["allow", "deny", "deny"]
    assert _value(metrics, "gateway_decision_seconds_count") == 3
    assert _value(metrics, "gateway_opa_errors_total", kind="undefined") == 1
    assert _value(metrics, "gateway_opa_errors_total", kind="unavailable") == 1
    assert _value(metrics, "gateway_opa_errors_total", kind="timeout") == 0
