"""The contracts that cross a boundary: the proposed action OPA judges, and its decision.

These models are the product's API towards policy authors: field names are snake_case and
stable, and ``ProposedAction.version`` changes when they do. ``canonical_json`` and
``fingerprint`` define the bytes an approval binds to and the audit chain hashes: RFC 8785
(the JSON Canonicalization Scheme), so any language with a JCS library recomputes them
(docs/hashes.md).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal, Self

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

__all__ = [
    "ACTION_VERSION",
    "Activity",
    "Approval",
    "ApprovalRequirement",
    "Backend",
    "Decision",
    "Effect",
    "History",
    "Obligations",
    "Outcome",
    "PlannedCall",
    "Principal",
    "ProposedAction",
    "Reason",
    "SessionFacts",
    "Severity",
    "Target",
    "Transport",
    "UntrustedRead",
    "canonical_json",
    "canonical_json_v1",
    "fingerprint",
    "utc_now",
]

ACTION_VERSION = 1

Effect = Literal["read", "write", "delete"]
Backend = Literal["kubernetes", "palette", "gateway"]
Outcome = Literal["allow", "deny", "needs_approval"]
Severity = Literal["info", "low", "medium", "high", "critical"]
ReasonEffect = Literal["deny", "needs_approval", "warn", "dryrun"]
Transport = Literal["stdio", "http", "cli", "internal"]

JSONObject = dict[str, Any]


def utc_now() -> str:
    """The current time as RFC 3339 UTC with a ``Z`` suffix, the form OPA's ``time`` builtins parse."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """``value`` in RFC 8785 canonical form (JCS): keys sorted by their UTF-16 code units,
    no insignificant whitespace, numbers as ECMAScript prints them, UTF-8 kept.

    Raises ``ValueError`` for what JCS cannot carry exactly: NaN, infinities, integers
    beyond ±(2**53 - 1), non-string keys, lone surrogates. The ``rfc8785`` package is the
    definition; most values (no fractional number, ASCII keys) are encoded by the standard
    library's C encoder instead, whose output is byte-identical there and ~4x faster
    (tests/unit/test_canonical_json.py checks the two agree on generated values).
    """
    if _plain(value):
        text: str = _PLAIN_ENCODER.encode(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("a string holds a lone surrogate, which JSON text cannot carry") from exc
        return text
    return rfc8785.dumps(value).decode("utf-8")


def canonical_json_v1(value: Any) -> str:
    """The canonical form before RFC 8785 (hash format 1): Python's ``json.dumps`` with
    sorted keys. Kept only to verify audit rows written in that format."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_PLAIN_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    """True when ``json.dumps`` writes ``value`` exactly as JCS does: no float (JCS prints
    them differently), every key an ASCII string (code-point and UTF-16 order agree),
    integers within JCS's exact range, and only JSON's own types."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is int:
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        else:
            return False
    return True


def fingerprint(value: Any) -> str:
    """SHA-256 over ``canonical_json(value)``, as lowercase hex."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PolicyDocument(BaseModel):
    """Parts of OPA's answer: strict, so ``"true"`` is not a boolean and ``"1"`` not a count."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Principal(_Contract):
    """Who asks. Always set by the transport or the CLI, never by tool arguments."""

    subject: Annotated[str, Field(min_length=1, max_length=256)]
    groups: tuple[str, ...] = ()
    transport: Transport
    authenticated: bool


class Target(_Contract):
    """What the action touches, resolved by the gateway (kind through discovery, environment from labels)."""

    cluster: str | None = None
    namespace: str | None = None
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    label_selector: str | None = None
    all_namespaces: bool = False
    environment: str | None = None


class Approval(_Contract):
    """One human's approval, as recorded by the queue and shown to policy on re-evaluation."""

    subject: Annotated[str, Field(min_length=1, max_length=256)]
    groups: tuple[str, ...] = ()
    approved_at: str
    reason: str | None = None


class UntrustedRead(_Contract):
    """One read in an MCP session that returned content the cluster's users or workloads
    control (the decision's ``obligations.untrusted`` named it): what, from where, when."""

    tool: str
    content: str
    target: Target
    at: str


class SessionFacts(_Contract):
    """What the gateway knows about the MCP session an action comes from, never taken from
    the client: a gateway-made id for the session and its untrusted reads, oldest first."""

    id: str
    untrusted_reads: tuple[UntrustedRead, ...] = ()


class Activity(_Contract):
    """How many calls the gateway decided for someone recently, by what they do: every
    call (``calls``), calls that change something (``writes``: effect write or delete),
    and ``deletes``; over the last minute and the last hour, sliding."""

    calls_last_minute: int = 0
    calls_last_hour: int = 0
    writes_last_minute: int = 0
    writes_last_hour: int = 0
    deletes_last_minute: int = 0
    deletes_last_hour: int = 0


class History(Activity):
    """``input.history``: the principal's recent activity across every session, process and
    replica (the counts of ``Activity``), and the current MCP session's as ``session``
    (None when the transport has no session). Counted from the gateway's database before
    this call; the call itself is not included."""

    session: Activity | None = None


class ProposedAction(_Contract):
    """Exactly what OPA sees as ``input``.

    ``args`` are the validated tool arguments in the form policy may read: a backend
    replaces bulky or secret-bearing arguments (a manifest's text) by a digest, since
    ``object`` carries the parsed content. ``object`` is the after-image, ``current`` the
    before-image; Secret values in both are replaced by ``sha256:<hex>`` digests, so no
    secret ever reaches OPA or its decision log. ``session`` is set (by
    ``gateway.session``) only for an action from an MCP session that read untrusted content.
    """

    version: Literal[1] = 1
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    tool: str
    backend: Backend
    operation: str
    effect: Effect
    target: Target
    args: JSONObject = Field(default_factory=dict)
    object: JSONObject | None = None
    current: JSONObject | None = None
    principal: Principal
    approvals: tuple[Approval, ...] = ()
    time: str = Field(default_factory=utc_now)
    session: SessionFacts | None = None
    # Recent activity (gateway.history); None when the gateway does not count it.
    history: History | None = None

    @model_serializer(mode="wrap")
    def _without_empty_session(self, handler: SerializerFunctionWrapHandler) -> JSONObject:
        # Without session facts the action serialises as it always has: its input, its
        # fingerprint and the calls stored in the queue stay the same bytes.
        data: JSONObject = handler(self)
        if data.get("session", 0) is None:
            del data["session"]
        return data

    def as_input(self) -> JSONObject:
        """The JSON document posted to OPA as ``input``."""
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        """Binds an approval to this action as evaluated; approvals are excluded."""
        return fingerprint(self.model_dump(mode="json", exclude={"approvals"}))


class PlannedCall(_Contract):
    """One tool call as the gateway will execute it: the raw validated arguments, and the
    proposed action(s) policy judged. ``k8s_apply`` of three documents is one call with
    three actions; every other tool has exactly one.
    """

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    tool: str
    call_args: JSONObject
    actions: tuple[ProposedAction, ...]

    def fingerprint(self) -> str:
        """SHA-256 over the call's arguments and every action (approvals excluded).

        Computed once per call object: the pipeline's audit records and the queue's row all
        carry this one value. Raises ``ValueError`` when the call holds a value JCS cannot
        carry (see ``canonical_json``).
        """
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        return fingerprint(
            {
                "id": self.id,
                "tool": self.tool,
                "call_args": self.call_args,
                "actions": [a.model_dump(mode="json", exclude={"approvals"}) for a in self.actions],
            }
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update`` the copy is another call, so its fingerprint is recomputed."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            copied.__dict__.pop("_fingerprint", None)
        return copied


class Reason(_PolicyDocument):
    """Why a rule fired; built by the policy from the rule's METADATA."""

    code: Annotated[str, Field(min_length=1)]
    rule: Annotated[str, Field(min_length=1)]
    severity: Severity
    effect: ReasonEffect
    message: Annotated[str, Field(min_length=1)]


class ApprovalRequirement(_PolicyDocument):
    """What policy demands before a parked action may run."""

    min_approvals: Annotated[int, Field(ge=1, le=10)] = 1
    approver_groups: list[str] = Field(default_factory=list)
    ttl_seconds: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] = 900
    allow_self_approval: bool = False


class Obligations(_PolicyDocument):
    """What the gateway must do to a result before it leaves."""

    redact: list[str] = Field(default_factory=list)
    max_log_lines: Annotated[int, Field(ge=0)] | None = None
    untrusted: list[str] = Field(default_factory=list)
    """What a read returns that the cluster's users or workloads control: the gateway marks
    the MCP session that read it (``gateway.session``)."""


class Decision(_PolicyDocument):
    """``data.gateway.decision``, validated field by field, plus where it came from.

    ``bundle_revision`` and ``decision_id`` are filled by the policy client from OPA's
    provenance; they are not part of the Rego document.
    """

    outcome: Outcome
    reasons: list[Reason] = Field(default_factory=list)
    approval: ApprovalRequirement | None = None
    obligations: Obligations = Field(default_factory=Obligations)
    warnings: list[Reason] = Field(default_factory=list)
    dryrun: list[Reason] = Field(default_factory=list)
    bundle_revision: str | None = None
    decision_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"
