"""Kubernetes client errors turned into the gateway's ``BackendError`` family.

The model and the audit log get the API's own ``message`` field (cleaned and bounded),
never an ``ApiException`` dump with its headers and body.
"""

from __future__ import annotations

import json
import re
import ssl
from typing import Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from gateway.errors import (
    BackendError,
    BackendUnavailable,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
)

__all__ = ["api_message", "changed_since_judged", "translate"]

_MAX_MESSAGE = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def api_message(exc: ApiException) -> str:
    """The ``message`` of the ``Status`` body, or the HTTP reason when there is none."""
    body: Any = getattr(exc, "body", None)
    message = ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            message = parsed["message"]
    if not message:
        message = f"HTTP {exc.status} {exc.reason or ''}".strip()
    message = _CONTROL.sub(" ", message).strip()
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return message


def translate(exc: BaseException, *, server: str) -> BackendError:
    """The gateway error for a failed call; callers ``raise translate(exc) from exc``."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ApiException):
        status = exc.status or 0
        message = api_message(exc)
        if status == 404:
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        if status == 401:
            return Forbidden(f"the Kubernetes API rejected the gateway's credentials: {message}")
        if status == 403:
            return Forbidden(message)
        if status in (400, 405, 406, 410, 415, 422):
            return Invalid(message)
        if status == 429:
            return RateLimited(f"the Kubernetes API is throttling requests: {message}")
        if status == 0:
            return BackendUnavailable(f"the Kubernetes API at {server} did not answer: {message}")
        return BackendUnavailable(f"the Kubernetes API at {server} failed ({status}): {message}")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return BackendUnavailable(f"the Kubernetes API at {server} did not answer in time")
    if isinstance(exc, urllib3.exceptions.HTTPError | ssl.SSLError | OSError):
        return BackendUnavailable(f"the Kubernetes API at {server} is unreachable ({type(exc).__name__})")
    return BackendUnavailable(f"the Kubernetes API call failed unexpectedly ({type(exc).__name__})")


def changed_since_judged(kind: str, name: str, namespace: str | None, exc: Exception) -> str:
    """The Conflict message when optimistic concurrency refused a judged write."""
    where = f"{namespace}/{name}" if namespace else name
    return (
        f"{kind} {where} changed after policy judged it; nothing was written, propose the call again ({exc})"
    )
