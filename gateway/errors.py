"""The gateway's exception hierarchy: one family per boundary.

    GatewayError
    ├── ConfigError              settings that cannot be used
    │   └── BundleError          a candidate bundle (replay, shadow) is not a bundle, does not
    │                            build or load, or its signature does not verify
    ├── InvalidArguments         a tool call's arguments failed validation (the model can fix them)
    │   └── RollbackRefused      ``gateway_rollback`` of an action that cannot be rolled back:
    │                            unknown, never executed, the caller may not, cannot be undone,
    │                            already rolled back (``reason`` says which)
    ├── UnknownTool              no such tool is registered
    ├── PayloadTooLarge          arguments or a manifest above the configured size
    ├── PolicyError              the policy engine failed; ``code`` is the fail-closed reason code
    │   ├── PolicyUnavailable    connection refused, HTTP error          GW-POLICY-UNAVAILABLE
    │   │   └── PolicyTimeout    no complete answer in time              GW-POLICY-TIMEOUT
    │   └── MalformedDecision    wrong types, unknown outcome            GW-POLICY-MALFORMED
    │       └── UndefinedDecision  no rule produced a decision           GW-POLICY-UNDEFINED
    ├── BackendError             a Kubernetes or Palette call failed
    │   ├── NotFound
    │   ├── Conflict
    │   │   └── Drifted          a rollback's object changed since the gateway's write
    │   ├── Forbidden
    │   ├── Invalid
    │   ├── RateLimited          the backend (or the gateway's own client-side limit) says
    │   │                        "not now"; ``retry_after`` says when, if known
    │   └── BackendUnavailable
    ├── QueueError               the approval queue refused a transition
    │   ├── UnknownAction
    │   ├── InvalidTransition
    │   ├── ApprovalRefused      duplicate approver, self-approval, not in an approver group
    │   │   └── ProofRefused     an approval's signature or attestation is missing, malformed,
    │   │                        stale, replayed, for another call, or by an unknown or revoked key
    │   ├── StaleApprovals       someone approved meanwhile; the approve flow judges again
    │   ├── CorruptAction        a stored row no longer parses (edited outside the gateway)
    │   └── SealError            a stored call cannot be decrypted (unknown key id, tampered)
    ├── AuthError                a credential was refused (HTTP 401); the message names why
    ├── ClientError              the approvals API could not be used from the CLI
    │   └── GatewayUnreachable   connection refused, timeout, not a gateway
    ├── HistoryUnavailable       recent activity could not be counted (database unavailable
    │                            or too slow): writes are refused, reads go on
    ├── AuditError
    │   └── ChainBroken          a row whose hash does not match the chain
    └── DatabaseError            a statement or the connection to the database failed (SQLite or
        │                        PostgreSQL); the store maps it to QueueError / AuditError
        └── DuplicateKey         an insert met a row with the same key

Every message is written for the person or model that reads it: it says what failed and
what to do, and it never carries a secret, a traceback or a third-party exception's text
unless that text was cleaned first. Third-party errors are re-raised ``from exc``.
"""

from __future__ import annotations

__all__ = [
    "ApprovalRefused",
    "AuditError",
    "AuthError",
    "BackendError",
    "BackendUnavailable",
    "BundleError",
    "ChainBroken",
    "ClientError",
    "ConfigError",
    "Conflict",
    "CorruptAction",
    "DatabaseError",
    "Drifted",
    "DuplicateKey",
    "Forbidden",
    "GatewayError",
    "GatewayUnreachable",
    "HistoryUnavailable",
    "Invalid",
    "InvalidArguments",
    "InvalidTransition",
    "MalformedDecision",
    "NotFound",
    "PayloadTooLarge",
    "PolicyError",
    "PolicyTimeout",
    "PolicyUnavailable",
    "ProofRefused",
    "QueueError",
    "RateLimited",
    "RollbackRefused",
    "SealError",
    "StaleApprovals",
    "UndefinedDecision",
    "UnknownAction",
    "UnknownTool",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A setting is missing or cannot be used."""


class BundleError(ConfigError):
    """A candidate policy bundle cannot be used: not a bundle, it does not build, OPA cannot
    load it, or its signature does not verify. Nothing was started or changed."""


class InvalidArguments(GatewayError):
    """A tool call's arguments failed validation; nothing was sent anywhere."""


class RollbackRefused(InvalidArguments):
    """``gateway_rollback`` was asked for something it cannot roll back; nothing was sent to
    policy or a backend. ``reason``: ``unknown``, ``not_executed``, ``not_allowed``,
    ``irreversible``, ``rolled_back`` or ``unavailable``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownTool(GatewayError):
    """The named tool is not registered."""


class PayloadTooLarge(GatewayError):
    """Arguments, a manifest or a body exceed the configured limit."""


class PolicyError(GatewayError):
    """The policy engine did not produce a usable decision. ``code`` is the reason code of
    the fail-closed deny the decision path substitutes for it."""

    code: str = "GW-POLICY-UNAVAILABLE"


class PolicyUnavailable(PolicyError):
    """OPA could not be reached or answered with an HTTP error."""


class PolicyTimeout(PolicyUnavailable):
    """OPA did not answer completely within the configured time."""

    code = "GW-POLICY-TIMEOUT"


class MalformedDecision(PolicyError):
    """OPA answered, but the decision does not match the contract."""

    code = "GW-POLICY-MALFORMED"


class UndefinedDecision(MalformedDecision):
    """OPA answered without a result: no rule produced a decision at the path."""

    code = "GW-POLICY-UNDEFINED"


class BackendError(GatewayError):
    """A backend (Kubernetes, Palette) refused or failed a call."""


class NotFound(BackendError):
    """The object does not exist."""


class Conflict(BackendError):
    """The object changed underneath the call, or a field is owned by another manager."""


class Drifted(Conflict):
    """The object a rollback would restore changed since the gateway's write (someone else
    edited it); the message lists what changed. Nothing was sent to policy or written."""


class Forbidden(BackendError):
    """The backend's own authorization (RBAC, API key scope) refused the call."""


class Invalid(BackendError):
    """The backend rejected the request as invalid."""


class RateLimited(BackendError):
    """The backend asked us to slow down and retries were exhausted, or the gateway's own
    rate limit would hold the request longer than its budget. ``retry_after`` is the
    number of seconds after which a retry can succeed, when known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendUnavailable(BackendError):
    """The backend could not be reached or answered with a server error."""


class QueueError(GatewayError):
    """The approval queue refused an operation; nothing was changed."""


class UnknownAction(QueueError):
    """No parked action has this id."""


class InvalidTransition(QueueError):
    """The action is not in a state that allows this operation."""


class ApprovalRefused(QueueError):
    """This approver may not approve this action (again)."""


class ProofRefused(ApprovalRefused):
    """An approval's proof (SSH signature, gateway attestation) cannot be accepted: missing,
    malformed, stale or replayed, bound to another call, or made with an unknown or revoked
    key. Nothing was approved, and an action carrying it does not run."""


class StaleApprovals(QueueError):
    """Someone else approved between reading the action and recording this approval;
    the approve flow re-evaluates and tries again."""


class CorruptAction(QueueError):
    """A stored row no longer parses: it was edited outside the gateway."""


class SealError(QueueError):
    """A stored call is encrypted with a key this gateway does not hold, or its ciphertext
    was altered."""


class AuthError(GatewayError):
    """A bearer credential was refused: unknown or revoked token, or a JWT that is
    expired, not yet valid, for another audience or issuer, or not signed by the issuer."""


class ClientError(GatewayError):
    """The CLI could not use the gateway's approvals API (bad URL, unsafe token file,
    an answer that is not the API's)."""


class GatewayUnreachable(ClientError):
    """The gateway did not answer: connection refused, timed out, TLS failure."""


class HistoryUnavailable(GatewayError):
    """The principal's recent activity could not be read from the database in time: a call
    that changes something is refused (``GW-HISTORY-UNAVAILABLE``), a read goes on."""

    code = "GW-HISTORY-UNAVAILABLE"


class AuditError(GatewayError):
    """The audit log could not be written or read."""


class ChainBroken(AuditError):
    """A row's hash does not match the chain."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class DatabaseError(GatewayError):
    """A statement or the connection to the gateway's database failed (locked, lost,
    refused); the transaction it ran in was rolled back. The message names the backend's
    reason, never the connection's password."""


class DuplicateKey(DatabaseError):
    """An insert met an existing row with the same key."""
