"""The policy client: asks the OPA sidecar for ``data.gateway.decision`` and never fails open.

One ``httpx.AsyncClient`` with keep-alive connections is created per ``PolicyClient`` (once,
at startup) and reused for every decision. Each decision is bounded by
``Settings.opa_timeout_seconds`` end to end, not only per socket operation, so a sidecar
that trickles bytes cannot hold a tool call.

``decide`` never raises: whatever goes wrong on the way (connection refused, timeout, HTTP
error, undefined decision, a document that does not match ``Decision`` field by field) is
turned into a ``deny`` whose single reason says that the policy engine failed and how:

====================== ===================================================================
code                   when
====================== ===================================================================
GW-POLICY-UNAVAILABLE  connection refused or reset, HTTP error status from OPA
GW-POLICY-TIMEOUT      no complete answer within ``opa_timeout_seconds``
GW-POLICY-UNDEFINED    200 without ``result``: no rule produced a decision at the path
GW-POLICY-MALFORMED    not JSON, wrong types, unknown outcome, extra keys, inconsistent
====================== ===================================================================

``evaluate`` is the raising variant (``PolicyUnavailable`` / ``MalformedDecision``) for
callers that want to tell the failure apart themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Self

import httpx
from pydantic import ValidationError

from gateway.contracts import (
    ApprovalRequirement,
    Decision,
    Obligations,
    Outcome,
    ProposedAction,
    Reason,
)
from gateway.errors import MalformedDecision, PolicyError, PolicyUnavailable
from gateway.metrics import METRICS, Metrics
from gateway.settings import Settings

__all__ = [
    "CODE_MALFORMED",
    "CODE_TIMEOUT",
    "CODE_UNAVAILABLE",
    "CODE_UNDEFINED",
    "PolicyClient",
    "fail_closed",
    "merge_decisions",
]

log = logging.getLogger(__name__)

CODE_UNAVAILABLE = "GW-POLICY-UNAVAILABLE"
CODE_TIMEOUT = "GW-POLICY-TIMEOUT"
CODE_UNDEFINED = "GW-POLICY-UNDEFINED"
CODE_MALFORMED = "GW-POLICY-MALFORMED"

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


class _Failure(PolicyError):
    """A ``PolicyError`` that knows its reason code."""

    code: str = CODE_UNAVAILABLE


class _Unavailable(PolicyUnavailable, _Failure):
    code = CODE_UNAVAILABLE


class _Timeout(PolicyUnavailable, _Failure):
    code = CODE_TIMEOUT


class _Undefined(MalformedDecision, _Failure):
    code = CODE_UNDEFINED


class _Malformed(MalformedDecision, _Failure):
    code = CODE_MALFORMED


def fail_closed(code: str, message: str) -> Decision:
    """The decision the gateway substitutes when policy could not decide: deny, saying why."""
    return Decision(
        outcome="deny",
        reasons=[
            Reason(
                code=code,
                rule="policy_engine",
                severity="high",
                effect="deny",
                message=f"policy engine failed, so the call is denied: {message}",
            )
        ],
    )


class PolicyClient:
    """Decisions from the OPA sidecar at ``Settings.opa_url``.

    Use as an async context manager (or call ``aclose``) so the pooled connections are
    released. ``transport`` is for tests that need a particular HTTP transport; production
    code leaves it unset.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._timeout = settings.opa_timeout_seconds
        self._metrics = metrics or METRICS
        path = settings.decision_path.strip("/")
        self._url = f"{settings.opa_url.rstrip('/')}/v1/data/{path}?provenance"
        self._where = f"data.{path.replace('/', '.')}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(
                max_connections=settings.opa_max_connections,
                max_keepalive_connections=settings.opa_max_connections,
                keepalive_expiry=30.0,
            ),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            # The sidecar is on loopback or the pod network: never route it through a proxy
            # taken from the environment.
            trust_env=False,
            transport=transport,
        )

    @property
    def url(self) -> str:
        """The decision endpoint, with ``?provenance`` so each answer names its bundle revision."""
        return self._url

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled client, shared with callers that must measure against it (the benchmark)."""
        return self._client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def evaluate(self, action: ProposedAction) -> Decision:
        """Ask OPA about one action.

        Raises ``PolicyUnavailable`` (refused, timed out, HTTP error) or
        ``MalformedDecision`` (undefined, not the contract).
        """
        # pydantic serialises straight to bytes; the envelope around it needs no re-parse.
        body = b'{"input":' + action.model_dump_json().encode() + b"}"
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(self._url, content=body)
                raw = await response.aread()
        except TimeoutError as exc:
            raise _Timeout(f"OPA did not answer within {self._timeout:g}s") from exc
        except httpx.TimeoutException as exc:
            raise _Timeout(f"OPA did not answer within {self._timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise _Unavailable(f"OPA could not be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise _Unavailable(f"OPA answered HTTP {response.status_code}{_opa_error_code(raw)}")
        return self._parse(raw)

    async def decide(self, action: ProposedAction) -> Decision:
        """The decision about one action; any failure is a fail-closed ``deny``. Never raises."""
        started = time.perf_counter()
        try:
            return await self.evaluate(action)
        except _Failure as exc:
            log.warning("policy decision failed closed for %s %s: %s", action.tool, action.id, exc)
            self._metrics.record_opa_error(_METRIC_KINDS.get(exc.code, "other"))
            return fail_closed(exc.code, str(exc))
        finally:
            self._metrics.observe_decision(time.perf_counter() - started)

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

    def _parse(self, raw: bytes) -> Decision:
        try:
            envelope = json.loads(raw)
        except ValueError as exc:
            raise _Malformed("OPA's answer is not JSON") from exc
        if not isinstance(envelope, dict):
            raise _Malformed("OPA's answer is not a JSON object")
        if "result" not in envelope:
            raise _Undefined(f"{self._where} is undefined for this input (no rule produced a decision)")
        result = envelope["result"]
        if not isinstance(result, dict):
            raise _Malformed(f"{self._where} is a {_json_type(result)}, not an object")
        spoofed = _CLIENT_FIELDS.intersection(result)
        if spoofed:
            raise _Malformed(f"decision has unexpected field(s) {sorted(spoofed)}")
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
            raise _Malformed(_describe(exc)) from exc
        _check_consistent(decision)
        return decision


def merge_decisions(decisions: Iterable[Decision]) -> Decision:
    """One decision for a call of several actions.

    Any deny wins, else any needs_approval, else allow. Reasons, warnings and dryrun are
    concatenated (exact duplicates once). The approval block is the strictest: the largest
    ``min_approvals``, the union of approver groups, the shortest TTL, self-approval only if
    every block allows it. Obligations: the union of redact paths, the smallest
    ``max_log_lines``. Revisions and decision ids are joined with ``,`` when they differ.
    """
    items = list(decisions)
    if not items:
        return fail_closed(CODE_MALFORMED, "no decision to merge")
    if len(items) == 1:
        return items[0]
    outcomes = {d.outcome for d in items}
    outcome: Outcome = (
        "deny" if "deny" in outcomes else "needs_approval" if "needs_approval" in outcomes else "allow"
    )
    blocks = [d.approval for d in items if d.approval is not None]
    approval = None
    if blocks:
        approval = ApprovalRequirement(
            min_approvals=max(b.min_approvals for b in blocks),
            approver_groups=_union(g for b in blocks for g in b.approver_groups),
            ttl_seconds=min(b.ttl_seconds for b in blocks),
            allow_self_approval=all(b.allow_self_approval for b in blocks),
        )
    limits = [d.obligations.max_log_lines for d in items if d.obligations.max_log_lines is not None]
    return Decision(
        outcome=outcome,
        reasons=_unique(r for d in items for r in d.reasons),
        approval=approval,
        obligations=Obligations(
            redact=_union(p for d in items for p in d.obligations.redact),
            max_log_lines=min(limits) if limits else None,
        ),
        warnings=_unique(r for d in items for r in d.warnings),
        dryrun=_unique(r for d in items for r in d.dryrun),
        bundle_revision=_join(d.bundle_revision for d in items),
        decision_id=_join(d.decision_id for d in items),
    )


def _check_consistent(decision: Decision) -> None:
    # A document that contradicts itself is doubtful, and doubt is a deny.
    if decision.outcome == "needs_approval" and decision.approval is None:
        raise _Malformed("outcome is needs_approval but the decision has no approval block")
    if decision.outcome != "deny" and any(r.effect == "deny" for r in decision.reasons):
        raise _Malformed(f"outcome is {decision.outcome} but a reason has effect deny")


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


def _opa_error_code(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    code = body.get("code") if isinstance(body, dict) else None
    return f" ({code})" if isinstance(code, str) and code.isidentifier() else ""


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


def _unique(reasons: Iterable[Reason]) -> list[Reason]:
    seen: dict[Reason, None] = {}
    for reason in reasons:
        seen.setdefault(reason, None)
    return list(seen)


def _union(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _join(values: Iterable[str | None]) -> str | None:
    present = _union(v for v in values if v)
    return ",".join(present) or None
