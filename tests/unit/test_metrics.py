"""The metrics registry and its Prometheus text exposition."""

from __future__ import annotations

from opa_support import answers, fake_opa
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.contracts import Principal, ProposedAction, Target
from gateway.metrics import MAX_RULE_CODES, Metrics
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


def test_rule_codes_are_counted_by_effect_and_bounded_in_number() -> None:
    metrics = Metrics()
    metrics.record_violations(
        [("K8S-PRIV-001", "deny"), ("OPS-PROD-001", "needs_approval"), ("K8S-IMG-002", "warn")]
    )
    metrics.record_violations([("K8S-PRIV-001", "deny"), ('x"}\n', "deny"), ("K8S-PRIV-001", "explode")])
    assert _value(metrics, "gateway_policy_violations_total", code="K8S-PRIV-001", effect="deny") == 2
    assert (
        _value(metrics, "gateway_policy_violations_total", code="OPS-PROD-001", effect="needs_approval") == 1
    )
    assert _value(metrics, "gateway_policy_violations_total", code="other", effect="deny") == 1
    assert _value(metrics, "gateway_policy_violations_total", code="K8S-PRIV-001", effect="other") == 1
    many = Metrics()
    many.record_violations((f"GEN-{i:04d}", "deny") for i in range(MAX_RULE_CODES + 10))
    codes = {s.labels["code"] for s in _samples(many) if s.name == "gateway_policy_violations_total"}
    assert len(codes) == MAX_RULE_CODES + 1  # the first MAX_RULE_CODES, then "other"
    assert _value(many, "gateway_policy_violations_total", code="other", effect="deny") == 10


def test_backend_requests_carry_the_status_or_error_and_a_bounded_operation() -> None:
    metrics = Metrics()
    metrics.record_backend_request("palette", "get_cluster", 404, 0.01)
    metrics.record_backend_request("kubernetes", "apply", None, 0.5)
    metrics.record_backend_request("kubernetes", "GET /api/v1/secrets", 200, 0.01)
    metrics.record_backend_request("nowhere", "get", 999, 0.01)
    assert (
        _value(
            metrics,
            "gateway_backend_requests_total",
            backend="palette",
            operation="get_cluster",
            status="404",
        )
        == 1
    )
    assert (
        _value(
            metrics, "gateway_backend_requests_total", backend="kubernetes", operation="apply", status="error"
        )
        == 1
    )
    assert (
        _value(
            metrics, "gateway_backend_requests_total", backend="kubernetes", operation="other", status="200"
        )
        == 1
    )
    assert (
        _value(metrics, "gateway_backend_requests_total", backend="other", operation="get", status="error")
        == 1
    )
    assert (
        _value(
            metrics, "gateway_backend_request_duration_seconds_count", backend="kubernetes", operation="apply"
        )
        == 1
    )


def test_series_operators_alert_on_exist_before_the_first_event() -> None:
    metrics = Metrics()
    for outcome in ("approved", "denied", "expired", "cancelled"):
        assert _value(metrics, "gateway_approvals_total", outcome=outcome) == 0
    for backend in ("kubernetes", "palette"):
        for source in ("client", "server"):
            assert _value(metrics, "gateway_backend_throttled_total", backend=backend, source=source) == 0
    metrics.record_approval("approved")
    metrics.record_approval("approval")  # one approver of several: not an outcome
    assert _value(metrics, "gateway_approvals_total", outcome="approved") == 1
    assert not any(s.labels.get("outcome") == "approval" for s in _samples(metrics))


def test_stages_outside_the_known_steps_are_counted_as_other() -> None:
    metrics = Metrics()
    metrics.observe_stage("decide", 0.001)
    metrics.observe_stage("made-up", 0.001)
    assert _value(metrics, "gateway_stage_duration_seconds_count", stage="decide") == 1
    assert _value(metrics, "gateway_stage_duration_seconds_count", stage="other") == 1


def test_no_created_timestamps_double_the_exposition() -> None:
    metrics = Metrics()
    metrics.record_call("k8s_get", "allow")
    assert "_created" not in metrics.render().decode()
