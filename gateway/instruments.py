"""The one instrumentation seam of the call path: a call scope and its stages.

``gateway.pipeline`` and the MCP front end mark where a call begins and ends
(``Instruments.call``) and each step inside it (``Instruments.stage``: admit, prepare,
history, decide, audit, execute, journal, redact, park, reply; ``gateway.metrics.STAGES``). Each
mark does three things at once:

- **metrics**: the step's duration into ``gateway_stage_duration_seconds{stage}``; at the
  end of a call, its duration into ``gateway_tool_call_duration_seconds{tool}`` and its
  outcome into ``gateway_tool_calls_total{tool, outcome}``;
- **traces** (only when ``gateway.tracing`` is configured): a ``gateway.call`` span with one
  child span per step, named ``gateway.<stage>``;
- **in-process listeners**: ``listeners`` receive ``(stage, seconds)`` for every step and
  ``("call", seconds)`` for every call, for benchmarks and tests that want the breakdown
  without scraping.

``annotate`` puts what the pipeline learns on the way (action id, effect, outcome, bundle
revision) on the current call: span attributes and the outcome counted at the end. Span
attributes never carry argument values, subjects or messages, and a failing step records
the exception's type name only.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from gateway.metrics import METRICS, Metrics

__all__ = ["Instruments", "StageListener"]

StageListener = Callable[[str, float], None]
"""``(stage, seconds)``; ``stage`` is ``"call"`` for a whole call."""

_ATTRIBUTES = {
    "action_id": "gateway.action_id",
    "effect": "gateway.effect",
    "outcome": "gateway.outcome",
    "bundle_revision": "gateway.bundle_revision",
}


@dataclass
class _Call:
    tool: str
    span: Span | None = None
    annotations: dict[str, str] = field(default_factory=dict)


_current: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("gateway_call", default=None)


class Instruments:
    """Metrics always, spans when ``tracer`` is given, listeners when registered."""

    def __init__(self, metrics: Metrics | None = None, tracer: Tracer | None = None) -> None:
        self.metrics = metrics or METRICS
        self.tracer = tracer
        self.listeners: list[StageListener] = []

    @contextmanager
    def call(self, tool: str, *, counted: bool = True) -> Iterator[None]:
        """One tool call from admission to reply. ``counted=False`` for a call that was
        counted when it was proposed (a parked call executed after approval): its steps
        are timed and traced, the call is not counted twice."""
        scope = _Call(tool)
        token = _current.set(scope)
        started = time.perf_counter()
        try:
            if self.tracer is None:
                yield
            else:
                name = "gateway.call" if counted else "gateway.execute_approved"
                with self.tracer.start_as_current_span(
                    name,
                    kind=SpanKind.INTERNAL,
                    attributes={"gen_ai.tool.name": tool},
                    record_exception=False,
                    set_status_on_exception=False,
                ) as span:
                    scope.span = span
                    with _failures_named(span):
                        yield
        finally:
            _current.reset(token)
            elapsed = time.perf_counter() - started
            if counted:
                self.metrics.observe_call(tool, elapsed)
                self.metrics.record_call(tool, scope.annotations.get("outcome", "error"))
            self._notify("call", elapsed)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """One step of the current call (or of none: then a root span when tracing)."""
        started = time.perf_counter()
        try:
            if self.tracer is None:
                yield
            else:
                with (
                    self.tracer.start_as_current_span(
                        f"gateway.{name}", record_exception=False, set_status_on_exception=False
                    ) as span,
                    _failures_named(span),
                ):
                    yield
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe_stage(name, elapsed)
            self._notify(name, elapsed)

    def annotate(self, **values: str | None) -> None:
        """Attributes of the current call (``action_id``, ``effect``, ``outcome``,
        ``bundle_revision``); ``None`` values are skipped. The first value of each wins: a
        policy check a backend makes from inside a call does not relabel it. Outside a
        call: nothing."""
        scope = _current.get()
        if scope is None:
            return
        for key, value in values.items():
            if value is None or key not in _ATTRIBUTES or key in scope.annotations:
                continue
            scope.annotations[key] = value
            if scope.span is not None:
                scope.span.set_attribute(_ATTRIBUTES[key], value)

    def _notify(self, stage: str, seconds: float) -> None:
        for listener in self.listeners:
            listener(stage, seconds)


@contextmanager
def _failures_named(span: Span) -> Iterator[None]:
    # The type is enough to tell failures apart; messages may quote a caller's input.
    try:
        yield
    except BaseException as exc:
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.set_attribute("error.type", type(exc).__name__)
        raise
