"""Who is calling: the principal comes from the transport, never from tool arguments.

stdio sessions act as the configured identity (default: the OS user). Over HTTP, the
authentication middleware (``gateway.http``) verifies the bearer token and stores the
resulting ``Principal`` in the ASGI scope under ``PRINCIPAL_SCOPE_KEY``; the tool handler
reads it from the request MCP hands it. A request that carries no principal there is
treated as unauthenticated, so a misconfigured stack fails closed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from gateway.contracts import Principal
from gateway.settings import Settings

__all__ = [
    "ANONYMOUS",
    "CALLER",
    "PRINCIPAL_SCOPE_KEY",
    "cli_principal",
    "principal_for_request",
    "stdio_principal",
]

PRINCIPAL_SCOPE_KEY = "gateway.principal"

ANONYMOUS = Principal(subject="anonymous", groups=(), transport="http", authenticated=False)

CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("gateway_caller")
"""The principal of the tool call being planned or run, set by ``gateway.pipeline`` only."""


def stdio_principal(settings: Settings) -> Principal:
    return Principal(subject=settings.subject, groups=settings.groups, transport="stdio", authenticated=True)


def cli_principal(settings: Settings) -> Principal:
    """The approver at the terminal."""
    return Principal(subject=settings.subject, groups=settings.groups, transport="cli", authenticated=True)


def principal_for_request(request: Any, settings: Settings) -> Principal:
    """The principal of the MCP request being handled.

    ``request`` is the transport's request object: ``None`` on stdio, a Starlette
    request over streamable HTTP.
    """
    if request is None:
        return stdio_principal(settings)
    scope = getattr(request, "scope", None)
    if isinstance(scope, Mapping):
        found = scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(found, Principal):
            return found
    return ANONYMOUS
