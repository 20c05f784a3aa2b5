"""The streamable HTTP front end: MCP at ``/mcp`` and the approvals API at ``/api/v1``
(``gateway.approvals_api``) behind host checks and bearer tokens, plus ``/healthz``,
``/readyz`` and ``/metrics`` for the orchestrator.

Request path for ``/mcp``::

    host/origin guard (DNS rebinding) -> bearer auth -> body-limit answer -> MCP streamable HTTP app

Refusals the model's user must be able to act on (a missing, unknown or revoked token, a
body above the limit) are answered with a JSON-RPC error body: the MCP client shows its
``message``, where any other body becomes "Server returned an error response".

The three operational endpoints need no token: they say nothing about who calls what
(counts by tool name and outcome, and ``ok`` / ``not ready`` per dependency), and the
deployment guide tells operators to expose them only to trusted networks. TLS is
terminated by a reverse proxy in front of the gateway, never here.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp_types import INVALID_REQUEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.approvals_api import approvals_routes
from gateway.audit import AuditLog
from gateway.auth import BearerAuthMiddleware, TokenStore
from gateway.db import Database
from gateway.errors import ConfigError
from gateway.metrics import CONTENT_TYPE, METRICS, Metrics
from gateway.oidc import OidcVerifier
from gateway.policy import OpaProbe
from gateway.queue.store import QueueStore
from gateway.runtime import RuntimeSlot
from gateway.settings import Settings

__all__ = ["MCP_PATH", "PUBLIC_PATHS", "QueueDepth", "build_app", "transport_security"]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

QueueDepth = Callable[[], Awaitable[Mapping[str, int]]]
"""Counts of parked actions by state, e.g. the queue store's count-by-state query."""

_LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")
_LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
_PROBE_TIMEOUT_SECONDS = 2.0


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host and Origin allow-lists; loopback only unless configured."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(settings.allowed_hosts or _LOOPBACK_HOSTS),
        allowed_origins=list(settings.allowed_origins or _LOOPBACK_ORIGINS),
    )


class _HostGuard:
    """Refuses a foreign Host or Origin before anything else looks at the request, so a
    DNS-rebinding page cannot even probe authentication."""

    def __init__(self, app: ASGIApp, *, security: TransportSecuritySettings) -> None:
        self.app = app
        self._check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") not in PUBLIC_PATHS:
            refusal = await self._check.validate_request(Request(scope), is_post=False)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyLimitAnswer:
    """The SDK refuses an MCP body above ``max_request_body_size`` with a plain-text 413;
    this answers it instead with a JSON-RPC error saying what the limits are."""

    def __init__(self, app: ASGIApp, *, body_limit: int, argument_limit: int) -> None:
        self.app = app
        error = {
            "code": INVALID_REQUEST,
            "message": (
                f"the request is larger than this gateway accepts ({body_limit} bytes); tool arguments "
                f"may be at most {argument_limit} bytes (GATEWAY_MAX_ARGUMENT_BYTES): nothing was run"
            ),
        }
        self._body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).rstrip("/") != MCP_PATH:
            await self.app(scope, receive, send)
            return
        replaced = False

        async def answer(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                replaced = True
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(self._body)),
                ]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": self._body})
            elif not replaced:
                await send(message)

        await self.app(scope, receive, answer)


@contextlib.asynccontextmanager
async def _probe_database(settings: Settings) -> AsyncIterator[Database]:
    """A connection of the probes' own (one pooled connection on PostgreSQL): ``/readyz``
    asks it whether a write could commit, ``/metrics`` counts the queue through it."""
    db = await Database.open(
        settings.database(), pool_size=1, connect_timeout_seconds=settings.database_connect_timeout_seconds
    )
    try:
        yield db
    finally:
        await db.close()


class _Probes:
    """``/healthz``, ``/readyz`` and ``/metrics``; one OPA probe for the app's life."""

    def __init__(self, settings: Settings, metrics: Metrics, queue_depth: QueueDepth | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.queue_depth = queue_depth
        self.opa = OpaProbe(settings, timeout_seconds=_PROBE_TIMEOUT_SECONDS)
        self.database: Database | None = None

    async def opa_ready(self) -> str:
        return await self.opa.status()

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        checks = {
            "opa": await self.opa_ready(),
            "database": "ok"
            if self.database is not None and await self.database.writable()
            else "not writable",
        }
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
        )

    async def metrics_endpoint(self, request: Request) -> Response:
        # OPA's health at scrape time: the decision metrics only move when calls arrive.
        self.metrics.set_opa_up(await self.opa_ready() == "ok")
        if self.queue_depth is not None:
            try:
                self.metrics.set_queue_depth(await self.queue_depth())
            except Exception:  # noqa: BLE001 - a scrape must answer even when the queue cannot
                log.warning("queue depth unavailable for /metrics", exc_info=False)
                self.metrics.set_queue_depth(None)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The OPA probe's session and, unless one was given, a read connection to the queue
        for its depth. Entered after the MCP runtime opened (and migrated) the database."""
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.opa)
            self.database = await stack.enter_async_context(_probe_database(self.settings))
            stack.callback(setattr, self, "database", None)
            if self.queue_depth is None:
                # Built directly, not with ``QueueStore.open``: that one also recovers
                # interrupted executions, which only the runtime that owns the executor may do.
                self.queue_depth = QueueStore(self.database, AuditLog(self.database)).count_by_state
                stack.callback(setattr, self, "queue_depth", None)
            yield


def build_app(
    server: MCPServer[Any],
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    queue_depth: QueueDepth | None = None,
    slot: RuntimeSlot | None = None,
) -> Starlette:
    """The ASGI app ``gateway serve --transport http`` runs.

    ``metrics`` defaults to the process-wide ``gateway.metrics.METRICS`` the decision
    path records into. ``slot`` is where ``server``'s lifespan puts its runtime
    (``build_server(settings, slot=slot)``): with it, the approvals API is served under
    ``/api/v1``. Raises ``ConfigError`` when no request could ever be authorised
    (``anonymous = "reject"`` without a tokens file) or the tokens file is unusable.
    """
    if settings.tokens_file is None and settings.oidc_issuer is None and settings.anonymous == "reject":
        raise ConfigError(
            "HTTP transport needs GATEWAY_TOKENS_FILE (create tokens with `gateway token create`), "
            "GATEWAY_OIDC_ISSUER or GATEWAY_ANONYMOUS=read-only"
        )
    tokens = TokenStore(settings.tokens_file) if settings.tokens_file is not None else None
    oidc = OidcVerifier(settings) if settings.oidc_issuer is not None else None
    metrics = metrics or METRICS
    security = transport_security(settings)
    # Bounds memory only; the decision path enforces max_argument_bytes exactly.
    body_limit = 2 * settings.max_argument_bytes + 64 * 1024
    mcp_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=security,
        host=settings.host,
        stateless_http=settings.stateless_http,
        max_request_body_size=body_limit,
    )
    probes = _Probes(settings, metrics, queue_depth)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if oidc is not None:
                stack.push_async_callback(oidc.aclose)
            await stack.enter_async_context(probes.running())
            await stack.enter_async_context(mcp_app.router.lifespan_context(mcp_app))
            yield

    return Starlette(
        routes=[
            Route("/healthz", probes.healthz, methods=["GET"]),
            Route("/readyz", probes.readyz, methods=["GET"]),
            Route("/metrics", probes.metrics_endpoint, methods=["GET"]),
            *(approvals_routes(slot) if slot is not None else []),
            Mount("/", app=mcp_app),
        ],
        middleware=[
            Middleware(_HostGuard, security=security),
            Middleware(
                BearerAuthMiddleware,
                tokens=tokens,
                anonymous=settings.anonymous,
                public_paths=PUBLIC_PATHS,
                on_failure=metrics.record_auth_failure,
                jsonrpc_paths={MCP_PATH},
                oidc=oidc,
            ),
            Middleware(_BodyLimitAnswer, body_limit=body_limit, argument_limit=settings.max_argument_bytes),
        ],
        lifespan=lifespan,
    )
