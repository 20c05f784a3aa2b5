"""The policy client: asks the OPA sidecar for ``data.gateway.decision`` and never fails open.

The decision path uses opa-python-client's ``AsyncOpaClient`` (aiohttp), not httpx as the
rest of the gateway does: a decision is one small POST to a sidecar on loopback, so the
client's own CPU is most of its latency. Measured on the project's 2-core machine against
OPA serving a constant policy, an httpx round trip costs ~1.0 ms of Python per request,
``query_rule`` ~0.3 ms; with httpx the targets (p50 <= 0.5 ms, >= 1,500 decisions/s) are
out of reach whatever the gateway does around the call.

One ``AsyncOpaClient`` (one aiohttp session, keep-alive connections) is opened in
``__aenter__`` and reused (its pool is aiohttp's default of 100 connections: the library
builds the connector). It never retries:
a failed decision is denied, not asked again.
Each decision is bounded by ``Settings.opa_timeout_seconds`` end to end (aiohttp's total
timeout and an ``asyncio.timeout``), so a sidecar that trickles bytes cannot hold a call.
``Settings.opa_url`` is ``http(s)://host[:port]`` without a path: OPA's API is at the root.

``decide`` never raises: whatever goes wrong on the way (connection refused, timeout, HTTP
error, undefined decision, a document that does not match ``Decision`` field by field) is
turned into a ``deny`` whose single reason says that the policy engine failed and how
(aiohttp exceptions by type name only, never their text):

====================== ===================================================================
code                   when
====================== ===================================================================
GW-POLICY-UNAVAILABLE  connection refused or reset, HTTP error status from OPA
GW-POLICY-TIMEOUT      no complete answer within ``opa_timeout_seconds``
GW-POLICY-UNDEFINED    200 without ``result``: no rule produced a decision at the path
GW-POLICY-MALFORMED    not JSON, wrong types, unknown outcome, extra keys, inconsistent
====================== ===================================================================

``evaluate`` and ``evaluate_all`` are the raising variants (``PolicyUnavailable`` /
``MalformedDecision``) for callers that want to tell the failure apart themselves.
``evaluate_batch`` judges many inputs in one request (``gateway policy replay``).

Every decision OPA produced is told to ``PolicyClient.observers`` (``gateway.observation``:
the recorder, the shadow evaluator) as it is returned; fail-closed denials are not.

``OpaProbe`` asks the same sidecar whether its bundle is active, for ``/readyz``: with a
session of its own, so a probe never queues behind decisions. This module is the gateway's
one OPA client: nothing else speaks HTTP to OPA.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import aiohttp
from opa_client.opa_async import AsyncOpaClient
from pydantic import ValidationError

from gateway.contracts import Decision, ProposedAction
from gateway.decisions import CODE_MALFORMED, fail_closed, merge_decisions
from gateway.errors import (
    ConfigError,
    MalformedDecision,
    PolicyError,
    PolicyTimeout,
    PolicyUnavailable,
    UndefinedDecision,
)
from gateway.metrics import METRICS, Metrics
from gateway.observation import DecisionObserver, context_for
from gateway.settings import Settings

__all__ = ["CODE_MALFORMED", "CODE_TIMEOUT", "CODE_UNAVAILABLE", "CODE_UNDEFINED", "OpaProbe", "PolicyClient"]

log = logging.getLogger(__name__)

CODE_UNAVAILABLE = PolicyUnavailable.code
CODE_TIMEOUT = PolicyTimeout.code
CODE_UNDEFINED = UndefinedDecision.code

# The ``kind`` label of ``gateway_opa_errors_total`` for each fail-closed reason code.
_METRIC_KINDS = {
    CODE_UNAVAILABLE: "unavailable",
    CODE_TIMEOUT: "timeout",
    CODE_UNDEFINED: "undefined",
    CODE_MALFORMED: "malformed",
}

# Filled by the client from OPA's envelope; a policy that sets them itself is malformed.
_CLIENT_FIELDS = frozenset({"bundle_revision", "decision_id"})
_MAX_ERROR_FIELDS = 5

# `query_rule` url-encodes this as `?provenance=True`; OPA compares the value to "true"
# ignoring case, and only then names the bundle revision in its answer.
_PARAMS = {"provenance": True}
_WITH_METRICS = {**_PARAMS, "metrics": True}
# `query_rule` turns dots into slashes and does not escape: segments are kept to characters
# that mean the same in a Rego reference and a URL path.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# Beside the decision, in its package: what data says about each cluster (k8s_clusters).
_ENVIRONMENTS_RULE = "cluster_environments"


class PolicyClient:
    """Decisions from the OPA sidecar at ``Settings.opa_url``.

    Use as an async context manager (or call ``aclose``): entering opens the one
    ``AsyncOpaClient`` every decision goes through, leaving closes its connections. A client
    that is not open denies every call. Raises ``ConfigError`` at construction when
    ``opa_url`` or ``decision_path`` cannot be used.
    """

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self._timeout = settings.opa_timeout_seconds
        self._metrics = metrics or METRICS
        self._host, self._port, self._ssl = _endpoint(settings.opa_url)
        path = settings.decision_path.strip("/")
        segments = path.split("/")
        if not all(_SEGMENT.fullmatch(s) for s in segments):
            raise ConfigError(
                f"GATEWAY_DECISION_PATH {settings.decision_path!r} is not a slash-separated path "
                "of names made of letters, digits, '_' and '-'"
            )
        # `query_rule` asks for data.<package>.<rule>; a one-segment path is a package alone.
        self._package = ".".join(segments[:-1]) or segments[0]
        self._rule = segments[-1] if len(segments) > 1 else None
        self._where = f"data.{'.'.join(segments)}"
        scheme = "https" if self._ssl else "http"
        self._url = f"{scheme}://{self._host}:{self._port}/v1/data/{path}?{urlencode(_PARAMS)}"
        self._stack: AsyncExitStack | None = None
        self._opa: Any = None  # AsyncOpaClient while open; the library has no type hints
        self.observers: list[DecisionObserver] = []
        """Told of every decision OPA produced (see ``gateway.observation``)."""
        # Each input of a batch judged as if it were the whole input, keyed by its position
        # (brackets: a segment may hold '-', which a dotted Rego reference cannot).
        ref = "data" + "".join(f'["{s}"]' for s in segments)
        self._batch_query = f"x := {{i: d | some i; a := input.batch[i]; d := {ref} with input as a}}"

    @property
    def url(self) -> str:
        """The decision endpoint as queried, with ``provenance`` so answers name their bundle revision."""
        return self._url

    async def __aenter__(self) -> Self:
        if self._stack is None:
            stack = AsyncExitStack()
            opa = AsyncOpaClient(
                host=self._host,
                port=self._port,
                ssl=self._ssl,
                retries=0,  # a failed decision is denied, never asked again
                timeout=self._timeout,
            )
            self._opa = await stack.enter_async_context(opa)
            self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        stack, self._stack, self._opa = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def query(self, input_data: dict[str, Any], *, metrics: bool = False) -> Any:
        """OPA's answer for ``input_data`` at the decision path, as OPA sent it.

        One ``AsyncOpaClient.query_rule`` call with the client, rule and parameters
        ``evaluate`` uses, without its deadline, error mapping or validation: the baseline
        the benchmark measures the decision path against. ``metrics`` adds OPA's own timers.
        Raises aiohttp's exceptions unchanged, and ``PolicyUnavailable`` when not open.
        """
        if self._opa is None:
            raise PolicyUnavailable("the policy client is not open")
        params = _WITH_METRICS if metrics else _PARAMS
        return await self._opa.query_rule(input_data, self._package, self._rule, query_params=params)

    async def evaluate(self, action: ProposedAction) -> Decision:
        """Ask OPA about one action.

        Raises ``PolicyUnavailable`` (not open, refused, timed out, HTTP error) or
        ``MalformedDecision`` (not JSON, undefined, not the contract).
        """
        return self._parse(await self._ask(self.query(action.as_input())))

    async def _ask(self, request: Awaitable[Any]) -> Any:
        """OPA's answer to ``request`` (a ``query_rule`` call), within the deadline, its
        failures raised as ``PolicyUnavailable`` / ``PolicyTimeout`` / ``MalformedDecision``."""
        try:
            async with asyncio.timeout(self._timeout):
                return await request
        except TimeoutError as exc:  # ours, aiohttp's total timeout and its socket timeouts
            raise PolicyTimeout(f"OPA did not answer within {self._timeout:g}s") from exc
        except aiohttp.ContentTypeError as exc:  # before its base class, ClientResponseError
            raise MalformedDecision("OPA's answer is not JSON (wrong content type)") from exc
        except aiohttp.ClientResponseError as exc:
            # `query_rule` raises on the status before reading the body, so OPA's error code
            # is not available here; its log has it.
            raise PolicyUnavailable(f"OPA answered HTTP {exc.status}") from exc
        except aiohttp.ClientError as exc:
            raise PolicyUnavailable(f"OPA could not be reached ({type(exc).__name__})") from exc
        except ValueError as exc:  # declared JSON, but not JSON (or not UTF-8)
            raise MalformedDecision("OPA's answer is not JSON") from exc

    async def cluster_environments(self, clusters: Sequence[str]) -> dict[str, str]:
        """The environment policy data gives each of ``clusters`` (kube context names):
        ``data.<package>.cluster_environments`` for ``{"clusters": [...]}``, the package of
        the decision path. Names data says nothing about are left out. Not a decision, so
        not counted in the decision metrics. Raises ``PolicyError`` (not open, unreachable,
        undefined, not an object of strings)."""
        if self._opa is None:
            raise PolicyUnavailable("the policy client is not open")
        where = f"data.{self._package}.{_ENVIRONMENTS_RULE}"
        request = self._opa.query_rule({"clusters": list(clusters)}, self._package, _ENVIRONMENTS_RULE)
        answer = await self._ask(request)
        if not isinstance(answer, dict) or "result" not in answer:
            raise UndefinedDecision(f"{where} is undefined: the policy does not define it")
        result = answer["result"]
        if not isinstance(result, dict) or not all(isinstance(v, str) for v in result.values()):
            raise MalformedDecision(f"{where} is not an object of environment names")
        return {str(name): env for name, env in result.items()}

    async def decide(self, action: ProposedAction) -> Decision:
        """The decision about one action; any failure is a fail-closed ``deny``. Never raises."""
        try:
            return await self._measured(action)
        except PolicyError as exc:
            log.warning("policy decision failed closed for %s %s: %s", action.tool, action.id, exc)
            return fail_closed(exc.code, str(exc))

    async def _measured(self, action: ProposedAction) -> Decision:
        """``evaluate``, timed and counted in the metrics the decision path exports."""
        started = time.perf_counter()
        try:
            decision = await self.evaluate(action)
        except PolicyError as exc:
            self._metrics.record_opa_error(_METRIC_KINDS.get(exc.code, "other"))
            raise
        finally:
            self._metrics.observe_decision(time.perf_counter() - started)
        if self.observers:
            self._notify(action, decision)
        return decision

    def _notify(self, action: ProposedAction, decision: Decision) -> None:
        context = context_for(action)
        for observer in self.observers:
            try:
                observer.observe(action, decision, context)
            except Exception:  # an observer's bug must never reach the decision path
                log.exception("decision observer %s failed", type(observer).__name__)

    async def evaluate_all(self, actions: Sequence[ProposedAction]) -> Decision:
        """The merged decision about every action of one call, raising instead of denying.

        For callers that must tell "policy said no" from "policy could not answer" (the
        approve flow records nothing on an outage; the executor fails the action saying
        the engine failed). Raises ``PolicyUnavailable`` or ``MalformedDecision``.
        """
        if not actions:
            raise MalformedDecision("the call produced no action to judge")
        results = await asyncio.gather(*(self._measured(a) for a in actions), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return merge_decisions(r for r in results if isinstance(r, Decision))

    async def decide_all(self, actions: Sequence[ProposedAction]) -> Decision:
        """The merged decision about every action of one call, evaluated concurrently.

        See ``merge_decisions``. No actions at all is a deny: there is nothing policy judged.
        """
        if not actions:
            return fail_closed(CODE_MALFORMED, "the call produced no action to judge")
        if len(actions) == 1:
            return await self.decide(actions[0])
        decisions = await asyncio.gather(*(self.decide(a) for a in actions))
        return merge_decisions(decisions)

    async def evaluate_batch(self, inputs: Sequence[dict[str, Any]]) -> list[Decision | PolicyError]:
        """The decision at the decision path for each of ``inputs``, in one request.

        OPA's query API evaluates the decision once per input, each ``with input as`` that
        input: the same document ``evaluate`` asks for, without an HTTP round trip per
        input. Each element is a ``Decision`` or the ``MalformedDecision`` /
        ``UndefinedDecision`` that input got (answers carry no provenance: bundle_revision
        is None). Observers are not told. Raises ``PolicyUnavailable`` (also for a query
        OPA refused or failed as a whole) and ``MalformedDecision`` for an answer that is
        not the query's.
        """
        if self._opa is None:
            raise PolicyUnavailable("the policy client is not open")
        if not inputs:
            return []
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._opa.ad_hoc_query(self._batch_query, {"batch": list(inputs)})
        except TimeoutError as exc:
            raise PolicyTimeout(f"OPA did not answer a batch within {self._timeout:g}s") from exc
        except aiohttp.ContentTypeError as exc:
            raise MalformedDecision("OPA's answer is not JSON (wrong content type)") from exc
        except aiohttp.ClientResponseError as exc:
            raise PolicyUnavailable(f"OPA answered HTTP {exc.status}") from exc
        except aiohttp.ClientError as exc:
            raise PolicyUnavailable(f"OPA could not be reached ({type(exc).__name__})") from exc
        except ValueError as exc:
            raise MalformedDecision("OPA's answer is not JSON") from exc
        rows = answer.get("result") if isinstance(answer, dict) else None
        found = rows[0].get("x") if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None
        if not isinstance(found, dict):
            raise MalformedDecision("OPA's answer to a batch is not the query's result")
        results: list[Decision | PolicyError] = []
        for index in range(len(inputs)):
            key = str(index)
            try:
                results.append(self._parse({"result": found[key]} if key in found else {}))
            except PolicyError as exc:
                results.append(exc)
        return results

    def _parse(self, envelope: Any) -> Decision:
        if not isinstance(envelope, dict):
            raise MalformedDecision("OPA's answer is not a JSON object")
        if "result" not in envelope:
            raise UndefinedDecision(
                f"{self._where} is undefined for this input (no rule produced a decision)"
            )
        result = envelope["result"]
        if not isinstance(result, dict):
            raise MalformedDecision(f"{self._where} is a {_json_type(result)}, not an object")
        spoofed = _CLIENT_FIELDS.intersection(result)
        if spoofed:
            raise MalformedDecision(f"decision has unexpected field(s) {sorted(spoofed)}")
        decision_id = envelope.get("decision_id")
        # Provenance joins the document before its single validation (no copy afterwards).
        result = {
            **result,
            "bundle_revision": _revision(envelope.get("provenance")),
            "decision_id": decision_id if isinstance(decision_id, str) else None,
        }
        try:
            decision = Decision.model_validate(result)
        except ValidationError as exc:
            raise MalformedDecision(_describe(exc)) from exc
        _check_consistent(decision)
        return decision


def _check_consistent(decision: Decision) -> None:
    # A document that contradicts itself is doubtful, and doubt is a deny.
    if decision.outcome == "needs_approval" and decision.approval is None:
        raise MalformedDecision("outcome is needs_approval but the decision has no approval block")
    if decision.outcome != "deny" and any(r.effect == "deny" for r in decision.reasons):
        raise MalformedDecision(f"outcome is {decision.outcome} but a reason has effect deny")


def _endpoint(url: str) -> tuple[str, int, bool]:
    # `AsyncOpaClient` takes host, port and a TLS flag, and always requests /v1/... at the
    # root: a URL it could not honour exactly is refused rather than half used. Messages
    # never echo the URL, which could carry credentials.
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError("GATEWAY_OPA_URL is not a valid URL (bad host or port)") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("GATEWAY_OPA_URL must be http://host[:port] or https://host[:port]")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("GATEWAY_OPA_URL must not carry credentials: the policy client cannot send them")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            "GATEWAY_OPA_URL must not have a path, query or fragment: "
            "the policy client asks OPA at the root (/v1/data/...)"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    tls = parts.scheme == "https"
    return host, port or (443 if tls else 80), tls


def _revision(provenance: Any) -> str | None:
    # `opa run --bundle PATH` names each bundle by its path: take whatever bundles are listed.
    if not isinstance(provenance, dict):
        return None
    bundles = provenance.get("bundles")
    if not isinstance(bundles, dict):
        return None
    revisions = sorted(
        {
            b["revision"]
            for b in bundles.values()
            if isinstance(b, dict) and isinstance(b.get("revision"), str)
        }
    )
    return ",".join(revisions) or None


def _describe(exc: ValidationError) -> str:
    # Field locations and pydantic's message only: never the offending input value.
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:_MAX_ERROR_FIELDS]:
        where = ".".join(str(p) for p in err["loc"]) or "decision"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - _MAX_ERROR_FIELDS
    suffix = f" (and {more} more)" if more > 0 else ""
    return "decision does not match the contract: " + "; ".join(parts) + suffix


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "value"


class OpaProbe:
    """``GET /health?bundles`` on the sidecar: ``ok``, ``bundle not active``, ``unreachable``,
    or ``not started`` outside ``async with``."""

    def __init__(self, settings: Settings, *, timeout_seconds: float) -> None:
        self._url = f"{settings.opa_url.rstrip('/')}/health?bundles"
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        # Like the policy client: the sidecar is never reached through a proxy from the environment.
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def status(self) -> str:
        if self._session is None:
            return "not started"
        try:
            async with self._session.get(self._url) as response:
                return "ok" if response.status == 200 else "bundle not active"
        except (aiohttp.ClientError, TimeoutError):
            return "unreachable"
