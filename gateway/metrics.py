"""Prometheus metrics of one gateway process, in their own registry.

The decision path records into a ``Metrics`` object; ``GET /metrics`` renders it in the
Prometheus text format. Label values are drawn from closed sets or checked against a
strict pattern, so neither a caller nor a policy can inflate the number of series or
smuggle text (an argument, a secret) into the exposition: anything unexpected is
counted under ``other``. Rule codes come from policy, so besides their pattern the number
of distinct codes is capped (``MAX_RULE_CODES``); later ones count as ``other``.

Names follow Prometheus conventions: counters end in ``_total``, durations are histograms
in seconds. docs/operations.md lists every series and what to alert on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway.ports import ActionState

__all__ = [
    "APPROVAL_OUTCOMES",
    "CONTENT_TYPE",
    "MAX_RULE_CODES",
    "METRICS",
    "OPA_ERROR_KINDS",
    "OUTCOMES",
    "RECORDING_RESULTS",
    "SHADOW_RESULTS",
    "STAGES",
    "Metrics",
]

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The client's ``*_created`` gauges (one timestamp per series, per counter and histogram)
# double the exposition and no query here uses them; Prometheus's text format does not
# need them. The switch is process-wide in prometheus_client.
disable_created_metrics()  # type: ignore[no-untyped-call]

# ``rejected``: a request error (bad size, unknown tool, invalid arguments), before policy.
OUTCOMES = frozenset({"allow", "deny", "needs_approval", "error", "rejected"})
OPA_ERROR_KINDS = frozenset({"unavailable", "timeout", "undefined", "malformed"})
AUTH_FAILURES = frozenset({"missing_token", "invalid_token"})
# The steps of one call, in order (``gateway.instruments``): ``history`` reads the
# principal's recent activity for policy, ``park`` stores a call needing approval.
STAGES = ("admit", "prepare", "history", "decide", "audit", "execute", "journal", "redact", "park", "reply")
REASON_EFFECTS = frozenset({"deny", "needs_approval", "warn", "dryrun"})
APPROVAL_OUTCOMES = frozenset({"approved", "denied", "expired", "cancelled"})
BACKENDS = frozenset({"kubernetes", "palette"})
THROTTLE_SOURCES = frozenset({"client", "server"})
HISTORY_OPERATIONS = frozenset({"read", "write"})
MAX_RULE_CODES = 256
RECORDING_RESULTS = frozenset({"recorded", "oversize", "dropped", "failed"})
SHADOW_RESULTS = frozenset({"agree", "disagree", "error", "dropped"})
_DECISION_OUTCOMES = frozenset({"allow", "deny", "needs_approval"})
_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_OPERATION = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_RULE_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,15}){0,4}$")
_OTHER = "other"

# A decision is a loopback HTTP call to OPA: sub-millisecond when healthy, and the
# client gives up at ``opa_timeout_seconds`` (0.5 s by default).
_DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# A whole call: milliseconds for a read, seconds for a slow backend write, minutes when
# it waits for approval (``approval_wait_seconds``).
_CALL_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
_BACKEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _closed(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else _OTHER


def _tool(name: str) -> str:
    return name if _TOOL_NAME.fullmatch(name) else _OTHER


class Metrics:
    """Counters, a histogram and gauges; every method is cheap and never raises."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls = Counter(
            "gateway_tool_calls",
            "Tool calls answered, by tool and outcome (allow, deny, needs_approval, error, rejected).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self._call_seconds = Histogram(
            "gateway_tool_call_duration_seconds",
            "End-to-end time of a tool call, from admission to the reply, by tool.",
            ["tool"],
            buckets=_CALL_BUCKETS,
            registry=self.registry,
        )
        self._stage_seconds = Histogram(
            "gateway_stage_duration_seconds",
            "Time spent in each step of the call path (" + ", ".join(STAGES) + ").",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self._violations = Counter(
            "gateway_policy_violations",
            "Reasons in the decisions of tool calls, by rule code and effect "
            "(deny, needs_approval, warn, dryrun).",
            ["code", "effect"],
            registry=self.registry,
        )
        self._backend_requests = Counter(
            "gateway_backend_requests",
            "Requests to a backend API, by backend, operation and HTTP status ('error': no response).",
            ["backend", "operation", "status"],
            registry=self.registry,
        )
        self._backend_seconds = Histogram(
            "gateway_backend_request_duration_seconds",
            "Time of one request to a backend API (one attempt), by backend and operation.",
            ["backend", "operation"],
            buckets=_BACKEND_BUCKETS,
            registry=self.registry,
        )
        self._throttled = Counter(
            "gateway_backend_throttled",
            "Backend requests held back: refused by the gateway's own rate limit (source client) "
            "or answered 429 by the backend (source server).",
            ["backend", "source"],
            registry=self.registry,
        )
        self._rate_wait = Histogram(
            "gateway_backend_rate_limit_wait_seconds",
            "Time a backend request waited for the gateway's client-side rate limit.",
            ["backend"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self._approvals = Counter(
            "gateway_approvals",
            "Parked actions settled in this process, by outcome (approved, denied, expired, cancelled).",
            ["outcome"],
            registry=self.registry,
        )
        self._opa_up = Gauge(
            "gateway_opa_up",
            "1 when OPA answered its health check with an active bundle at the last scrape, else 0.",
            registry=self.registry,
        )
        self._history_failures = Counter(
            "gateway_history_failures",
            "Recent activity (runaway protection) that could not be read (writes were refused) "
            "or written (kept for the next batch), by operation.",
            ["operation"],
            registry=self.registry,
        )
        self._rule_codes: set[str] = set()
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
        self._recorded = Counter(
            "gateway_recorded_decisions",
            "Decisions kept for policy replay, by result (recorded; oversize: kept without the "
            "input; dropped: the recording queue was full; failed: the database refused the batch).",
            ["result"],
            registry=self.registry,
        )
        self._shadow = Counter(
            "gateway_shadow_evaluations",
            "Live decisions asked again of the shadow policy, by result (agree, disagree; error: "
            "the shadow OPA failed; dropped: the shadow queue was full).",
            ["result"],
            registry=self.registry,
        )
        self._shadow_disagreements = Counter(
            "gateway_shadow_disagreements",
            "Live decisions the shadow policy decided differently, by live (from) and shadow (to) "
            "outcome; from == to when only the reasons, approval terms or findings differ.",
            ["from", "to"],
            registry=self.registry,
        )
        # Series that exist from the start make absent() and rate() alerts reliable.
        for result in sorted(RECORDING_RESULTS):
            self._recorded.labels(result=result)
        for result in sorted(SHADOW_RESULTS):
            self._shadow.labels(result=result)
        for kind in sorted(OPA_ERROR_KINDS):
            self._opa_errors.labels(kind=kind)
        for reason in sorted(AUTH_FAILURES):
            self._auth_failures.labels(reason=reason)
        for outcome in sorted(APPROVAL_OUTCOMES):
            self._approvals.labels(outcome=outcome)
        for operation in ("read", "write"):
            self._history_failures.labels(operation=operation)
        for backend in sorted(BACKENDS):
            self._rate_wait.labels(backend=backend)
            for source in sorted(THROTTLE_SOURCES):
                self._throttled.labels(backend=backend, source=source)

    def record_call(self, tool: str, outcome: str) -> None:
        """One answered tool call; ``outcome`` is the decision outcome, ``error`` or ``rejected``."""
        self._calls.labels(tool=_tool(tool), outcome=_closed(outcome, OUTCOMES)).inc()

    def observe_call(self, tool: str, seconds: float) -> None:
        self._call_seconds.labels(tool=_tool(tool)).observe(max(0.0, seconds))

    def observe_stage(self, stage: str, seconds: float) -> None:
        label = stage if stage in STAGES else _OTHER
        self._stage_seconds.labels(stage=label).observe(max(0.0, seconds))

    def record_violations(self, reasons: Iterable[tuple[str, str]]) -> None:
        """``(code, effect)`` of every reason, warning and dry-run finding of one decision."""
        for code, effect in reasons:
            self._violations.labels(code=self._rule_code(code), effect=_closed(effect, REASON_EFFECTS)).inc()

    def record_backend_request(
        self, backend: str, operation: str, status: int | None, seconds: float
    ) -> None:
        """One attempt at a backend request; ``status`` None when no response came."""
        name = _closed(backend, BACKENDS)
        op = operation if _OPERATION.fullmatch(operation) else _OTHER
        code = str(status) if status is not None and 100 <= status <= 599 else "error"
        self._backend_requests.labels(backend=name, operation=op, status=code).inc()
        self._backend_seconds.labels(backend=name, operation=op).observe(max(0.0, seconds))

    def record_throttled(self, backend: str, source: str) -> None:
        labels = {"backend": _closed(backend, BACKENDS), "source": _closed(source, THROTTLE_SOURCES)}
        self._throttled.labels(**labels).inc()

    def observe_rate_limit_wait(self, backend: str, seconds: float) -> None:
        self._rate_wait.labels(backend=_closed(backend, BACKENDS)).observe(max(0.0, seconds))

    def record_approval(self, outcome: str) -> None:
        """A parked action settled (``approved``, ``denied``, ``expired``, ``cancelled``)."""
        if outcome in APPROVAL_OUTCOMES:
            self._approvals.labels(outcome=outcome).inc()

    def record_history_failure(self, operation: str) -> None:
        self._history_failures.labels(operation=_closed(operation, HISTORY_OPERATIONS)).inc()

    def set_opa_up(self, up: bool) -> None:
        self._opa_up.set(1 if up else 0)

    def _rule_code(self, code: str) -> str:
        if not _RULE_CODE.fullmatch(code):
            return _OTHER
        if code not in self._rule_codes:
            if len(self._rule_codes) >= MAX_RULE_CODES:
                return _OTHER
            self._rule_codes.add(code)
        return code

    def observe_decision(self, seconds: float) -> None:
        self._decision.observe(max(0.0, seconds))

    def record_opa_error(self, kind: str) -> None:
        self._opa_errors.labels(kind=_closed(kind, OPA_ERROR_KINDS)).inc()

    def record_auth_failure(self, reason: str) -> None:
        self._auth_failures.labels(reason=_closed(reason, AUTH_FAILURES)).inc()

    def record_recording(self, result: str, count: int = 1) -> None:
        """``count`` decisions kept for replay (or not), by result."""
        self._recorded.labels(result=_closed(result, RECORDING_RESULTS)).inc(count)

    def record_shadow(self, result: str) -> None:
        self._shadow.labels(result=_closed(result, SHADOW_RESULTS)).inc()

    def record_shadow_disagreement(self, live: str, shadow: str) -> None:
        self._shadow_disagreements.labels(
            **{"from": _closed(live, _DECISION_OUTCOMES), "to": _closed(shadow, _DECISION_OUTCOMES)}
        ).inc()

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
