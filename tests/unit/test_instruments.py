"""The call path's instrumentation seam: what one call and its steps record."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import BackendError
from gateway.instruments import Instruments
from gateway.metrics import Metrics


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_a_call_counts_its_outcome_times_itself_and_each_step() -> None:
    metrics = Metrics()
    instruments = Instruments(metrics)
    heard: list[str] = []
    instruments.listeners.append(lambda stage, seconds: heard.append(stage))
    with instruments.call("k8s_get"):
        with instruments.stage("decide"):
            pass
        instruments.annotate(outcome="allow", action_id="a1")
        with instruments.stage("reply"):
            pass
    assert heard == ["decide", "reply", "call"]
    assert _value(metrics, "gateway_tool_calls_total", tool="k8s_get", outcome="allow") == 1
    assert _value(metrics, "gateway_tool_call_duration_seconds_count", tool="k8s_get") == 1
    assert _value(metrics, "gateway_stage_duration_seconds_count", stage="decide") == 1


def test_a_call_that_ends_without_an_outcome_counts_as_an_error() -> None:
    metrics = Metrics()
    instruments = Instruments(metrics)
    with pytest.raises(RuntimeError), instruments.call("k8s_get"):
        raise RuntimeError("boom")
    assert _value(metrics, "gateway_tool_calls_total", tool="k8s_get", outcome="error") == 1


def test_the_first_annotation_wins_and_outside_a_call_nothing_happens() -> None:
    metrics = Metrics()
    instruments = Instruments(metrics)
    instruments.annotate(outcome="deny")  # no call: ignored
    with instruments.call("palette_validate_configuration"):
        instruments.annotate(outcome="allow")
        instruments.annotate(outcome="rejected")  # a nested policy check's rejection
    assert (
        _value(metrics, "gateway_tool_calls_total", tool="palette_validate_configuration", outcome="allow")
        == 1
    )
    assert (
        _value(metrics, "gateway_tool_calls_total", tool="palette_validate_configuration", outcome="rejected")
        is None
    )


def test_an_approved_execution_is_traced_but_not_counted_again() -> None:
    metrics = Metrics()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = Instruments(metrics, tracer=provider.get_tracer("t"))
    with instruments.call("k8s_delete", counted=False), instruments.stage("execute"):
        pass
    assert _value(metrics, "gateway_tool_calls_total", tool="k8s_delete", outcome="error") is None
    assert [s.name for s in exporter.get_finished_spans()] == ["gateway.execute", "gateway.execute_approved"]


def test_a_failing_step_span_names_the_error_type_and_no_message() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = Instruments(Metrics(), tracer=provider.get_tracer("t"))
    with pytest.raises(BackendError), instruments.call("k8s_get"), instruments.stage("execute"):
        raise BackendError("secret value hunter2 in a message")
    for span in exporter.get_finished_spans():
        assert span.status.description == "BackendError"
        assert "hunter2" not in repr(span.attributes) + repr(span.events)
