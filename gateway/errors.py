"""The gateway's exception hierarchy: one family per boundary.

    GatewayError
    ├── ConfigError              settings that cannot be used
    ├── InvalidArguments         a tool call's arguments failed validation (the model can fix them)
    ├── UnknownTool              no such tool is registered
    ├── PayloadTooLarge          arguments or a manifest above the configured size
    ├── PolicyError              the policy engine failed; the decision path turns it into deny
    │   ├── PolicyUnavailable    connection refused, timeout, HTTP error
    │   └── MalformedDecision    undefined result, wrong types, unknown outcome
    ├── BackendError             a Kubernetes or Palette call failed
    │   ├── NotFound
    │   ├── Conflict
    │   ├── Forbidden
    │   ├── Invalid
    │   ├── RateLimited
    │   └── BackendUnavailable
    ├── QueueError               the approval queue refused a transition
    │   ├── UnknownAction
    │   ├── InvalidTransition
    │   └── ApprovalRefused      duplicate approver, self-approval, not in an approver group
    └── AuditError
        └── ChainBroken          a row whose hash does not match the chain

Every message is written for the person or model that reads it: it says what failed and
what to do, and it never carries a secret, a traceback or a third-party exception's text
unless that text was cleaned first. Third-party errors are re-raised ``from exc``.
"""

from __future__ import annotations

__all__ = [
    "ApprovalRefused",
    "AuditError",
    "BackendError",
    "BackendUnavailable",
    "ChainBroken",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "Invalid",
    "InvalidArguments",
    "InvalidTransition",
    "MalformedDecision",
    "NotFound",
    "PayloadTooLarge",
    "PolicyError",
    "PolicyUnavailable",
    "QueueError",
    "RateLimited",
    "UnknownAction",
    "UnknownTool",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A setting is missing or cannot be used."""


class InvalidArguments(GatewayError):
    """A tool call's arguments failed validation; nothing was sent anywhere."""


class UnknownTool(GatewayError):
    """The named tool is not registered."""


class PayloadTooLarge(GatewayError):
    """Arguments, a manifest or a body exceed the configured limit."""


class PolicyError(GatewayError):
    """The policy engine did not produce a usable decision."""


class PolicyUnavailable(PolicyError):
    """OPA could not be reached, answered too slowly or answered with an HTTP error."""


class MalformedDecision(PolicyError):
    """OPA answered, but the decision is undefined or does not match the contract."""


class BackendError(GatewayError):
    """A backend (Kubernetes, Palette) refused or failed a call."""


class NotFound(BackendError):
    """The object does not exist."""


class Conflict(BackendError):
    """The object changed underneath the call, or a field is owned by another manager."""


class Forbidden(BackendError):
    """The backend's own authorization (RBAC, API key scope) refused the call."""


class Invalid(BackendError):
    """The backend rejected the request as invalid."""


class RateLimited(BackendError):
    """The backend asked us to slow down and retries were exhausted."""


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


class AuditError(GatewayError):
    """The audit log could not be written or read."""


class ChainBroken(AuditError):
    """A row's hash does not match the chain."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq
