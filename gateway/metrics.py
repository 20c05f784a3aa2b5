"""Prometheus metrics of one gateway process, in their own registry.

The decision path records into a ``Metrics`` object; ``GET /metrics`` renders it in the
Prometheus text format. Label values are drawn from closed sets or checked against a
strict pattern, so neither a caller nor a policy can inflate the number of series or
smuggle text (an argument, a secret) into the exposition: anything unexpected is
counted under ``other``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway.ports import ActionState

__all__ = ["CONTENT_TYPE", "METRICS", "OPA_ERROR_KINDS", "OUTCOMES", "Metrics"]

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

OUTCOMES = frozenset({"allow", "deny", "needs_approval", "error"})
OPA_ERROR_KINDS = frozenset({"unavailable", "timeout", "undefined", "malformed"})
AUTH_FAILURES = frozenset({"missing_token", "invalid_token"})
_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_OTHER = "other"

# A decision is a loopback HTTP call to OPA: sub-millisecond when healthy, and the
# client gives up at ``opa_timeout_seconds`` (0.5 s by default).
_DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _closed(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else _OTHER


class Metrics:
    """Counters, a histogram and gauges; every method is cheap and never raises."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls = Counter(
            "gateway_tool_calls",
            "Tool calls answered, by tool and outcome (allow, deny, needs_approval, error).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self._decision = Histogram(
            "gateway_decision_seconds",
            "Time to obtain one policy decision from OPA, including failures.",
            buckets=_DECISION_BUCKETS,
            registry=self.registry,
        )
        self._opa_errors = Counter(
            "gateway_opa_errors",
            "Policy decisions that failed closed, by kind (unavailable, timeout, undefined, malformed).",
            ["kind"],
            registry=self.registry,
        )
        self._auth_failures = Counter(
            "gateway_auth_failures",
            "HTTP requests refused for a missing or invalid bearer token.",
            ["reason"],
            registry=self.registry,
        )
        self._queue = Gauge(
            "gateway_queue_actions",
            "Parked actions in the approval queue, by state, as of the last scrape.",
            ["state"],
            registry=self.registry,
        )
        self._queue_up = Gauge(
            "gateway_queue_up",
            "1 when the last scrape could read the approval queue, else 0.",
            registry=self.registry,
        )
        # Series that exist from the start make absent() and rate() alerts reliable.
        for kind in sorted(OPA_ERROR_KINDS):
            self._opa_errors.labels(kind=kind)
        for reason in sorted(AUTH_FAILURES):
            self._auth_failures.labels(reason=reason)

    def record_call(self, tool: str, outcome: str) -> None:
        """One answered tool call; ``outcome`` is the decision outcome or ``error``."""
        name = tool if _TOOL_NAME.fullmatch(tool) else _OTHER
        self._calls.labels(tool=name, outcome=_closed(outcome, OUTCOMES)).inc()

    def observe_decision(self, seconds: float) -> None:
        self._decision.observe(max(0.0, seconds))

    def record_opa_error(self, kind: str) -> None:
        self._opa_errors.labels(kind=_closed(kind, OPA_ERROR_KINDS)).inc()

    def record_auth_failure(self, reason: str) -> None:
        self._auth_failures.labels(reason=_closed(reason, AUTH_FAILURES)).inc()

    def set_queue_depth(self, counts: Mapping[str, int] | None) -> None:
        """Queue depth by state; ``None`` when the queue could not be read."""
        if counts is None:
            self._queue_up.set(0)
            return
        self._queue_up.set(1)
        for state in ActionState:
            self._queue.labels(state=state.value).set(int(counts.get(state.value, 0)))

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


METRICS = Metrics()
"""The process-wide instance: the decision path records into it and ``/metrics`` renders it."""
