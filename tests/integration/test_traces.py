"""Traces of the call path, read back from an in-process exporter: one span per call with
one child per step, the attributes operators search by, never an argument value; and an
exporter that cannot export never holds a call."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from gateway_support import EchoBackend
from mcp import Client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.instruments import Instruments
from gateway.metrics import Metrics
from gateway.server import build_server
from gateway.settings import Settings
from gateway.tracing import Tracing

pytestmark = pytest.mark.integration

SECRET_ARGUMENT = "do-not-trace-this-value"


def _server(settings: Settings, instruments: Instruments) -> Any:
    return build_server(settings, backends=[EchoBackend().source()], instruments=instruments)


def _tree(spans: Sequence[ReadableSpan], root: ReadableSpan) -> list[str]:
    """The names of ``root``'s children, in start order."""
    children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    return [s.name for s in sorted(children, key=lambda s: s.start_time or 0)]


async def test_allowed_denied_and_parked_calls_have_one_span_per_step(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = Instruments(Metrics(), tracer=provider.get_tracer("test"))
    backend = EchoBackend()
    async with Client(build_server(settings, backends=[backend.source()], instruments=instruments)) as client:
        allowed = await client.call_tool("echo_read", {"text": SECRET_ARGUMENT})
        denied = await client.call_tool("echo_delete", {"name": SECRET_ARGUMENT[:40], "replicas": 1})
        parked = await client.call_tool("echo_scale", {"name": "web", "replicas": 3})
    assert not allowed.is_error
    assert denied.is_error
    assert parked.structured_content is not None
    spans = exporter.get_finished_spans()
    calls = {s.attributes["gen_ai.tool.name"]: s for s in spans if s.name == "gateway.call" and s.attributes}
    assert set(calls) == {"echo_read", "echo_delete", "echo_scale"}

    steps = ["gateway.admit", "gateway.history", "gateway.prepare", "gateway.decide", "gateway.audit"]
    assert _tree(spans, calls["echo_read"]) == [*steps, "gateway.execute", "gateway.redact", "gateway.reply"]
    assert _tree(spans, calls["echo_delete"]) == [*steps, "gateway.reply"]
    assert _tree(spans, calls["echo_scale"]) == [*steps, "gateway.park", "gateway.reply"]

    expected = {
        "echo_read": ("allow", "read"),
        "echo_delete": ("deny", "delete"),
        "echo_scale": ("needs_approval", "write"),
    }
    for tool, (outcome, effect) in expected.items():
        attributes = dict(calls[tool].attributes or {})
        assert attributes["gateway.outcome"] == outcome
        assert attributes["gateway.effect"] == effect
        assert attributes["gateway.bundle_revision"] == "test-rev"
        assert len(str(attributes["gateway.action_id"])) == 36
        assert {s.context.trace_id for s in spans if s.context.trace_id == calls[tool].context.trace_id}
    assert calls["echo_scale"].attributes is not None
    assert calls["echo_scale"].attributes["gateway.action_id"] == parked.structured_content["action_id"]

    # Attributes name the call; they never carry what the caller sent.
    for span in spans:
        text = repr(dict(span.attributes or {})) + repr([e.attributes for e in span.events])
        assert SECRET_ARGUMENT not in text
        assert SECRET_ARGUMENT[:40] not in text


async def test_a_failing_step_is_marked_with_its_error_type_only(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = Instruments(Metrics(), tracer=provider.get_tracer("test"))
    async with Client(
        build_server(settings, backends=[EchoBackend().source()], instruments=instruments)
    ) as client:
        crashed = await client.call_tool("echo_scale", {"name": "crash", "replicas": 1})
    assert crashed.is_error
    spans = {s.name: s for s in exporter.get_finished_spans()}
    prepare = spans["gateway.prepare"]
    assert prepare.status.description == "BackendError"
    assert prepare.attributes is not None
    assert prepare.attributes["error.type"] == "BackendError"
    assert "s3cr3t" not in repr(prepare.attributes) + repr(prepare.status)
    assert spans["gateway.call"].attributes is not None
    assert spans["gateway.call"].attributes["gateway.outcome"] == "error"


class _StuckExporter(SpanExporter):
    """An exporter whose exports hang until released: a collector that never answers. An
    export on the event loop's thread (a synchronous processor) is recorded, not waited on,
    so that mistake fails this test at once instead of hanging it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exports = 0
        self.on_loop_thread = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if threading.current_thread() is threading.main_thread():
            self.on_loop_thread += 1
            return SpanExportResult.FAILURE
        self.exports += 1
        self.release.wait(timeout=120)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


async def test_an_exporter_that_never_answers_never_holds_a_call(settings: Settings) -> None:
    # Spans end into the batch processor's queue; export happens on its own thread, which
    # stays stuck in its first export for the whole test.
    exporter = _StuckExporter()
    tracing = Tracing.batched(exporter, Settings(otlp_max_queue_size=64))
    instruments = Instruments(Metrics(), tracer=tracing.tracer)
    try:
        async with Client(
            build_server(settings, backends=[EchoBackend().source()], instruments=instruments)
        ) as client:
            async with asyncio.timeout(60):
                for i in range(60):
                    result = await client.call_tool("echo_read", {"text": f"call {i}"})
                    assert not result.is_error
        assert exporter.on_loop_thread == 0
        assert exporter.exports >= 1
        assert not exporter.release.is_set()
    finally:
        await asyncio.to_thread(tracing.close, 2.0)


async def test_an_unreachable_collector_never_holds_a_call_nor_the_shutdown(settings: Settings) -> None:
    # A real OTLP exporter against a port that accepts connections and never answers. If
    # spans were exported on the call path, each would wait for the exporter's timeout; the
    # watchdog then shuts the exporter down (its exports give up at once, the loop runs
    # again) and the test fails on the flag instead of hanging.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
    tracing = Tracing.from_settings(Settings(otlp_endpoint=endpoint, otlp_timeout_seconds=30))
    assert tracing is not None
    stuck = threading.Event()

    def watchdog() -> None:
        stuck.set()
        tracing.provider.shutdown()

    timer = threading.Timer(60, watchdog)
    timer.start()
    try:
        instruments = Instruments(Metrics(), tracer=tracing.tracer)
        async with Client(
            build_server(settings, backends=[EchoBackend().source()], instruments=instruments)
        ) as client:
            for i in range(40):
                assert not (await client.call_tool("echo_read", {"text": f"call {i}"})).is_error
        assert not stuck.is_set()
        await asyncio.to_thread(tracing.close, 2.0)
        assert not stuck.is_set()
    finally:
        timer.cancel()
        silent.close()


def test_tracing_is_off_unless_an_endpoint_is_configured() -> None:
    assert Tracing.from_settings(Settings()) is None
    assert (
        Tracing.from_settings(
            Settings(otlp_endpoint="http://127.0.0.1:4318/v1/traces", OTEL_SDK_DISABLED="true")
        )
        is None
    )
    on = Tracing.from_settings(Settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318"))
    assert on is not None
    on.close(0.5)
