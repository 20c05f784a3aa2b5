"""Kubernetes client errors turned into the gateway's ``BackendError`` family.

The model and the audit log get the API's own ``message`` field, cleaned, bounded and
shortened to its cause, never an ``ApiException`` dump with its headers and body. The API
server wraps some causes in its own plumbing (``failed to create typed patch object (…)``,
``… cannot be handled as a …: json: cannot unmarshal … into Go struct field …``) and prints
some rejected values as Go literals (``Invalid value: core.PodTemplateSpec{…}: field is
immutable``, thousands of characters): ``cause`` keeps the object, the field and what is
wrong. Such a decode failure comes back as 500 but is the request's fault: ``Invalid``.
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

__all__ = ["api_message", "cause", "translate"]

_MAX_MESSAGE = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# "<verb> (<namespace>/<name>; <group/version>, Kind=<Kind>): <cause>" and its variants.
_DECODE_WRAPPER = re.compile(
    r"^failed to (?:create typed patch object|convert new object) \((?:(?P<where>[^;()]*); )?[^()]*"
    r"Kind=(?P<kind>\w+)\)(?: to proper version)?: (?:unable to convert unstructured object to [^:]+: )?"
)
_CANNOT_BE_HANDLED = re.compile(r'^(?P<kind>\w+) in version "[^"]*" cannot be handled as an? \w+: ')
_UNMARSHAL = re.compile(
    r"json: cannot unmarshal (?P<got>\w+) into Go (?:struct field \w+\.(?P<field>[\w.\[\]]+)|value) "
    r"of type (?P<type>[\w.\[\]*]+)"
)
# The API server's quantity error names neither the field nor the value: say what to write.
_QUANTITY_REGEX = re.compile(r"quantities must match the regular expression '[^']*'")
_QUANTITY_HINT = "a resource quantity is malformed: write quantities like '250m', '1.5', '512Mi' or '1Gi'"
# A Go literal printed as a rejected value: `v1.LabelSelector{`, `map[string]string{`,
# `[]core.X{`, `(*int64)(`.
_GO_LITERAL = re.compile(r"Invalid value: (?=(?:\[\]|map\[|\(\*|[a-z]\w*\.[A-Z]\w*[{(]))")


def api_message(exc: ApiException) -> str:
    """The ``message`` of the ``Status`` body shortened to its cause (or the HTTP reason
    when there is none), cleaned and bounded."""
    message = cause(_raw_message(exc))
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return message


def _raw_message(exc: ApiException) -> str:
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
    return _CONTROL.sub(" ", message).strip()


def cause(message: str) -> str:
    """``message`` shortened to its cause: the API server's decoding plumbing and Go
    literals of rejected values removed, the object and the field kept."""
    wrapped = _DECODE_WRAPPER.match(message)
    if wrapped:
        where = f" {wrapped['where']}" if wrapped["where"] else ""
        message = f"{wrapped['kind']}{where}: {message[wrapped.end() :]}"
    handled = _CANNOT_BE_HANDLED.match(message)
    if handled:
        message = f"{handled['kind']}: {message[handled.end() :]}"
    message = _UNMARSHAL.sub(_unmarshal_cause, message)
    message = _QUANTITY_REGEX.sub(_QUANTITY_HINT, message)
    return _without_go_literals(message)


def _unmarshal_cause(match: re.Match[str]) -> str:
    where = f"{match['field']}: " if match["field"] else ""
    return f"{where}expected {match['type'].lstrip('*[]')}, got {match['got']}"


def _without_go_literals(message: str) -> str:
    """Drop every ``Invalid value: <Go literal>: `` (the value is the caller's own object,
    printed as Go structs), keeping the field before it and the reason after it."""
    out, start = [], 0
    for found in _GO_LITERAL.finditer(message):
        if found.start() < start:
            continue
        end = _literal_end(message, found.end())
        if end is None:
            break
        out.append(message[start : found.start()])
        start = end + 2
    return "".join(out) + message[start:]


def _literal_end(text: str, at: int) -> int | None:
    """Where the Go literal starting at ``at`` ends: the first ``": "`` outside brackets
    and strings (the API server writes ``Invalid value: <literal>: <reason>``)."""
    depth, i = 0, at
    while i < len(text):
        char = text[i]
        if char == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        elif depth == 0 and text.startswith(": ", i):
            return i
        i += 1
    return None


def _decode_failure(message: str) -> bool:
    return bool(_DECODE_WRAPPER.match(message) or _CANNOT_BE_HANDLED.match(message))


def translate(exc: BaseException, *, server: str, cluster: str | None = None) -> BackendError:
    """The gateway error for a failed call; callers ``raise translate(exc) from exc``.
    Failures of the server itself (unreachable, credentials refused) name the cluster."""
    if isinstance(exc, BackendError):
        return exc
    api = (
        f"the Kubernetes API of cluster {cluster!r} at {server}"
        if cluster
        else f"the Kubernetes API at {server}"
    )
    if isinstance(exc, ApiException):
        status = exc.status or 0
        message = api_message(exc)
        if status == 500 and _decode_failure(_raw_message(exc)):
            return Invalid(message)
        if status == 404:
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        if status == 401:
            return Forbidden(f"{api} rejected the gateway's credentials: {message}")
        if status == 403:
            return Forbidden(message)
        if status in (400, 405, 406, 410, 415, 422):
            return Invalid(message)
        if status == 429:
            return RateLimited(f"{api} is throttling requests: {message}")
        if status == 0:
            return BackendUnavailable(f"{api} did not answer: {message}")
        return BackendUnavailable(f"{api} failed ({status}): {message}")
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # what the last attempt ran into
    # Before timeouts: urllib3 derives NewConnectionError (refused, no route) from ConnectTimeoutError.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return BackendUnavailable(f"{api} is unreachable (connection failed)")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return BackendUnavailable(f"{api} did not answer in time")
    if isinstance(exc, urllib3.exceptions.HTTPError | ssl.SSLError | OSError):
        return BackendUnavailable(f"{api} is unreachable ({type(exc).__name__})")
    return BackendUnavailable(f"the Kubernetes API call failed unexpectedly ({type(exc).__name__})")
