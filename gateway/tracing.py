"""OpenTelemetry traces over OTLP, when configured; nothing at all otherwise.

``Tracing.from_settings`` returns None unless ``Settings.traces_endpoint()`` names an
endpoint: then no SDK object exists, no thread runs, and ``gateway.instruments`` does not
open spans (the cost of tracing off is a branch per step).

When on, spans go through a ``BatchSpanProcessor`` to an OTLP/HTTP (protobuf) exporter. A
span that ends is put on a bounded in-memory queue and the call moves on; a worker thread
exports batches. A collector that is slow, down or unreachable therefore never slows a
call: the exporter's requests time out in the worker (``otlp_timeout_seconds``), and when
the queue (``otlp_max_queue_size``) is full the oldest spans are dropped (logged at most
once a minute). Closing flushes what is queued for at most a few seconds and then gives
up: a dead collector does not hold a gateway's shutdown either.

The provider is also installed as OpenTelemetry's global one (once per process), so the
MCP SDK's own server span (``tools/call <tool>``, which continues the client's trace
context from the request's ``_meta``) is exported too and the gateway's spans are its
children.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Self

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer

from gateway.errors import ConfigError
from gateway.settings import Settings

__all__ = ["SERVICE_NAME", "TRACER_NAME", "Tracing"]

log = logging.getLogger(__name__)

SERVICE_NAME = "policy-gateway"
TRACER_NAME = "policy-gateway"
_SUPPORTED_PROTOCOLS = frozenset({"http/protobuf"})
_CLOSE_SECONDS = 3.0
_global_installed = False
_global_lock = threading.Lock()


class Tracing:
    """One tracer provider and the processor that exports its spans."""

    def __init__(self, processor: SpanProcessor, *, resource: Resource | None = None) -> None:
        # shutdown_on_exit=False: the SDK's own atexit hook would wait up to 30 s on a dead
        # collector; ``close`` bounds that wait instead.
        self.provider = TracerProvider(resource=resource or _resource(), shutdown_on_exit=False)
        self.provider.add_span_processor(processor)
        self.tracer: Tracer = self.provider.get_tracer(TRACER_NAME)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self | None:
        """Tracing to the configured OTLP endpoint, or None when none is configured.
        Raises ``ConfigError`` for a protocol this build does not speak (gRPC)."""
        endpoint = settings.traces_endpoint()
        if endpoint is None:
            return None
        protocol = (settings.otel_protocol or "http/protobuf").strip().lower()
        if protocol not in _SUPPORTED_PROTOCOLS:
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: the gateway exports "
                "OTLP over HTTP (http/protobuf, usually port 4318)"
            )
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=settings.otlp_timeout_seconds)
        log.info("traces exported over OTLP to %s", _without_credentials(endpoint))
        return cls.batched(exporter, settings)

    @classmethod
    def batched(cls, exporter: SpanExporter, settings: Settings) -> Self:
        """Tracing through ``exporter`` off the call path: ending a span only queues it."""
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=settings.otlp_max_queue_size,
            max_export_batch_size=min(512, settings.otlp_max_queue_size),
            schedule_delay_millis=1000,
            export_timeout_millis=settings.otlp_timeout_seconds * 1000,
        )
        _quiet_drop_warnings()
        return cls(processor)

    def install_global(self) -> bool:
        """Make this OpenTelemetry's global provider, if no other gateway runtime in this
        process did first. True when installed."""
        global _global_installed
        with _global_lock:
            if _global_installed:
                return False
            trace.set_tracer_provider(self.provider)
            _global_installed = True
            return True

    def close(self, timeout: float = _CLOSE_SECONDS) -> None:
        """Flush and stop, waiting at most ``timeout`` seconds (blocking: call it from a
        worker thread). Spans still queued after that are dropped."""
        worker = threading.Thread(target=self.provider.shutdown, name="otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            log.warning("trace export unfinished after %.0f s at shutdown; queued spans dropped", timeout)


def _resource() -> Resource:
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    detected = Resource.create({})
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        return detected.merge(Resource({"service.name": SERVICE_NAME}))
    return detected


def _without_credentials(url: str) -> str:
    head, sep, tail = url.partition("://")
    return f"{head}{sep}{tail.rsplit('@', 1)[-1]}" if sep else url


class _OncePerInterval(logging.Filter):
    """Lets one record with a given message through per interval: the batch processor
    logs every span it drops, which under load would cost more than the spans."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        self._last[key] = now
        return True


def _quiet_drop_warnings() -> None:
    logger = logging.getLogger("opentelemetry.sdk._shared_internal")
    if not any(isinstance(f, _OncePerInterval) for f in logger.filters):
        logger.addFilter(_OncePerInterval())
