"""What an operator sees, end to end: the ``make up`` topology with traces exported to an
OTLP receiver, a scripted agent session (gateway.local.ops_session), then ``/metrics``
scraped and read with Prometheus's own parser, the spans the receiver got, and the
Grafana dashboard's queries checked against the series the scrape actually has."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from otlp_support import OtlpReceiver, ReceivedSpan
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gateway.local.ops_session import Agents, RoundReport, agent_client, run_round
from gateway.local.process import free_port
from gateway.local.topology import Topology, TopologyConfig
from gateway.metrics import (
    APPROVAL_OUTCOMES,
    OPA_ERROR_KINDS,
    OUTCOMES,
    RECORDING_RESULTS,
    SHADOW_RESULTS,
    STAGES,
)

pytestmark = [pytest.mark.integration, pytest.mark.kube]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "policy-gateway.json"
TRACE_ID = secrets.token_hex(16)
PARENT_ID = secrets.token_hex(8)


@dataclass
class Observed:
    topology: Topology
    receiver: OtlpReceiver
    report: RoundReport
    families: list[Metric]
    tools: set[str]


async def _session(topology: Topology, agents: Agents) -> tuple[RoundReport, set[str]]:
    report = await run_round(topology, agents)
    async with agent_client(topology, agents.tokens["carol"]) as carol:
        tools = {t.name for t in (await carol.list_tools()).tools}
        # A call that continues the client's trace (W3C trace context in the request's _meta).
        traced = await carol.call_tool(
            "k8s_get",
            {"kind": "Deployment", "namespace": "dev", "name": "web"},
            meta={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},  # type: ignore[typeddict-unknown-key]
        )
        assert not traced.is_error, traced.content
        # The approved write runs on the executor; wait until it has.
        for _ in range(150):
            state = await carol.call_tool("gateway_action", {"action_id": report.approved[0]})
            if (state.structured_content or {}).get("state") in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.2)
    return report, tools


@pytest.fixture(scope="module")
def observed(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    with OtlpReceiver() as receiver:
        config = TopologyConfig(
            root=ROOT,
            state_dir=tmp_path_factory.mktemp("observed"),
            opa_port=free_port(),
            gateway_port=free_port(),
            bundle=bundle_path,
            extra_env={"GATEWAY_OTLP_ENDPOINT": receiver.url},
        )
        topology = Topology(config)
        topology.start(timeout=120)
        try:
            report, tools = asyncio.run(_session(topology, Agents.create(topology)))
            text = httpx.get(f"{topology.gateway_url}/metrics", timeout=10).text
            families = list(text_string_to_metric_families(text))
            # Spans leave in batches about once a second.
            for _ in range(100):
                if any(
                    s.name == "tools/call k8s_get" and s.trace_id == TRACE_ID for s in receiver.received()
                ):
                    break
                asyncio.run(asyncio.sleep(0.1))
            yield Observed(topology, receiver, report, families, tools)
        finally:
            topology.stop()


def _samples(observed: Observed, name: str, **labels: str) -> list[float]:
    return [
        s.value
        for family in observed.families
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def _total(observed: Observed, name: str, **labels: str) -> float:
    return sum(_samples(observed, name, **labels))


def _documented() -> dict[str, tuple[str, set[str]]]:
    """The metrics table of docs/operations.md: family -> (type, label names)."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    rows = re.findall(
        r"^\| `(gateway_[a-z_]+)(?:\{([a-z_, ]*)\})?` \| (counter|gauge|histogram) \|", doc, re.MULTILINE
    )
    assert rows, "docs/operations.md lost its metrics table"
    return {
        name: (kind, {label.strip() for label in labels.split(",") if label.strip()})
        for name, labels, kind in rows
    }


# Label values drawn from closed sets or strict patterns (gateway/metrics.py).
_BOUNDS: dict[str, Any] = {
    "outcome": OUTCOMES | APPROVAL_OUTCOMES | {"other"},
    "kind": OPA_ERROR_KINDS | {"other"},
    "stage": set(STAGES) | {"other"},
    "effect": {"deny", "needs_approval", "warn", "dryrun", "other"},
    "backend": {"kubernetes", "palette", "other"},
    "source": {"client", "server", "other"},
    "reason": {"missing_token", "invalid_token", "other"},
    "result": RECORDING_RESULTS | SHADOW_RESULTS | {"other"},
    "from": {"allow", "deny", "needs_approval", "other"},
    "to": {"allow", "deny", "needs_approval", "other"},
    "state": {
        "pending",
        "approved",
        "executing",
        "succeeded",
        "failed",
        "denied",
        "expired",
        "cancelled",
        "interrupted",
    },
    "code": re.compile(r"^([A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,15}){0,4}|other)$"),
    "status": re.compile(r"^([1-5][0-9][0-9]|error)$"),
    "operation": re.compile(r"^[a-z][a-z0-9_]{0,47}$"),
}


def test_every_series_parses_follows_prometheus_conventions_and_is_documented(observed: Observed) -> None:
    documented = _documented()
    exported = {family.name: family for family in observed.families}
    # The parser names a counter family without its _total; the docs name the series.
    names = {
        (f"{name}_total" if family.type == "counter" else name): family for name, family in exported.items()
    }
    assert set(names) == set(documented), "docs/operations.md and /metrics disagree"
    for name, family in names.items():
        kind, labels = documented[name]
        assert family.type == kind, name
        assert name.startswith("gateway_")
        assert family.documentation, f"{name} has no HELP text"
        if kind == "histogram":
            assert name.endswith("_seconds"), f"{name}: durations are histograms in seconds"
        for sample in family.samples:
            if kind == "counter":
                assert sample.name == name
            elif kind == "histogram":
                assert sample.name in (f"{name}_bucket", f"{name}_sum", f"{name}_count")
            own = {k: v for k, v in sample.labels.items() if k != "le"}
            assert set(own) == labels, f"{sample.name} has labels {sorted(own)}, documented {sorted(labels)}"
            for label, value in own.items():
                if label == "tool":
                    assert value in observed.tools | {"other"}, value
                    continue
                bound = _BOUNDS[label]
                assert bound.fullmatch(value) if isinstance(bound, re.Pattern) else value in bound, (
                    label,
                    value,
                )
        if kind == "histogram":
            _check_buckets(family)


def _check_buckets(family: Metric) -> None:
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    counts: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in family.samples:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        if sample.name.endswith("_bucket"):
            series.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_count"):
            counts[key] = sample.value
    for key, buckets in series.items():
        values = [v for _, v in sorted(buckets)]
        assert values == sorted(values), f"{family.name}{key}: buckets are not cumulative"
        assert sorted(buckets)[-1] == (float("inf"), counts[key])


def test_the_session_shows_in_every_family(observed: Observed) -> None:
    report = observed.report
    assert report.outcomes["allow"] >= 3
    assert report.outcomes["deny"] == 1
    assert report.outcomes["needs_approval"] == 2
    m = observed
    assert _total(m, "gateway_tool_calls_total", tool="k8s_get", outcome="allow") >= 2
    assert _total(m, "gateway_tool_calls_total", tool="palette_list_clusters", outcome="allow") == 1
    assert _total(m, "gateway_tool_calls_total", tool="k8s_apply", outcome="deny") == 1
    assert _total(m, "gateway_tool_calls_total", tool="k8s_scale", outcome="needs_approval") == 2
    assert _total(m, "gateway_tool_calls_total", outcome="rejected") == 2  # a misspelt kind, replicas -1
    assert _total(m, "gateway_tool_call_duration_seconds_count", tool="k8s_get") >= 2
    assert _total(m, "gateway_policy_violations_total", code="K8S-PRIV-001", effect="deny") == 1
    assert _total(m, "gateway_policy_violations_total", effect="needs_approval") >= 2
    for stage in STAGES:  # the approved scale is journaled: every stage ran
        assert _total(m, "gateway_stage_duration_seconds_count", stage=stage) > 0, stage
    assert _total(m, "gateway_decision_seconds_count") >= 8
    assert _total(m, "gateway_opa_errors_total") == 0
    assert _samples(m, "gateway_opa_up") == [1.0]
    assert _samples(m, "gateway_queue_up") == [1.0]
    assert _total(m, "gateway_queue_actions", state="succeeded") == 1
    assert _total(m, "gateway_queue_actions", state="denied") == 1
    assert _total(m, "gateway_approvals_total", outcome="approved") == 1
    assert _total(m, "gateway_approvals_total", outcome="denied") == 1
    assert (
        _total(m, "gateway_backend_requests_total", backend="kubernetes", operation="get", status="200") >= 2
    )
    assert (
        _total(m, "gateway_backend_requests_total", backend="kubernetes", operation="patch") >= 1
    )  # the approved scale
    assert (
        _total(
            m, "gateway_backend_requests_total", backend="palette", operation="search_clusters", status="200"
        )
        >= 1
    )
    assert _total(m, "gateway_backend_request_duration_seconds_count", backend="palette") >= 1
    assert _total(m, "gateway_backend_throttled_total") == 0
    assert _total(m, "gateway_auth_failures_total") == 0
    assert _total(m, "gateway_history_failures_total") == 0


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id and s.trace_id == parent.trace_id]


def test_traces_reach_the_collector_and_continue_the_clients_trace(observed: Observed) -> None:
    spans = observed.receiver.received()
    server = [s for s in spans if s.trace_id == TRACE_ID and s.name == "tools/call k8s_get"]
    assert len(server) == 1, sorted({s.name for s in spans})
    assert server[0].parent_span_id == PARENT_ID  # the client's span, from traceparent
    assert server[0].resource["service.name"] == "policy-gateway"
    (call,) = [s for s in _children(spans, server[0]) if s.name == "gateway.call"]
    assert call.attributes["gen_ai.tool.name"] == "k8s_get"
    assert call.attributes["gateway.outcome"] == "allow"
    assert call.attributes["gateway.bundle_revision"] == "test"
    steps = [s.name for s in _children(spans, call)]
    assert steps == [
        "gateway.admit",
        "gateway.history",
        "gateway.prepare",
        "gateway.decide",
        "gateway.audit",
        "gateway.execute",
        "gateway.redact",
        "gateway.reply",
    ]
    # The approved write ran on the executor, traced as such.
    assert any(s.name == "gateway.execute_approved" for s in spans)
    for span in spans:
        assert "debug-shell" not in json.dumps(span.attributes)  # an argument value of the denied apply


_PROMQL_WORDS = frozenset(
    {"sum", "by", "without", "rate", "increase", "histogram_quantile", "sort_desc", "topk", "min", "max",
     "avg", "count", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
)  # fmt: skip


def _metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: identifiers that are not functions,
    keywords, label names (inside {} or after by/without) or Grafana variables."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\$\w+", "", text)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return {w for w in words if w not in _PROMQL_WORDS}


def _queries(dashboard: dict[str, Any]) -> list[str]:
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [t["expr"] for p in panels for t in p["targets"]]


def test_the_dashboard_queries_only_series_the_gateway_exports(observed: Observed) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = {s.name for family in observed.families for s in family.samples}
    queries = _queries(dashboard)
    assert len(queries) >= 20
    for expr in queries:
        names = _metric_names(expr)
        assert names, expr
        assert names <= exported, f"{expr} names {sorted(names - exported)}, which /metrics does not have"
    # What the issue names an operator expects on it.
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("calls", "latency", "denials by rule", "approvals waiting", "opa"):
        assert topic in titles, topic
    assert {p["datasource"]["uid"] for p in dashboard["panels"] if p["type"] != "row"} == {"${datasource}"}


def test_the_dashboard_check_would_notice_a_missing_series() -> None:
    assert _metric_names('sum by (code) (rate(gateway_nope_total{effect="deny"}[5m]))') == {
        "gateway_nope_total"
    }
    bucket = "gateway_tool_call_duration_seconds_bucket"
    expr = f"histogram_quantile(0.99, sum by (le, tool) (rate({bucket}[$__rate_interval])))"
    assert _metric_names(expr) == {bucket}
