"""The MCP front end: an ``MCPServer`` whose ``tools/list`` and ``tools/call`` are answered
from the gateway's own registry, so every tool call goes through ``gateway.pipeline``.

Assembly, and why it is shaped this way:

- ``build_server(settings)`` is synchronous and opens nothing. The server's lifespan opens
  the runtime (``gateway.runtime.open_runtime``: OPA client, queue + audit database,
  backends, executor) once per run and yields it as the lifespan context, where every
  handler finds it (``ctx.request_context.lifespan_context``).
- Backends only know their tools once they are opened, so the lifespan publishes them:
  each ``ToolSpec`` is listed with ``inputSchema = spec.args.model_json_schema()``, its
  description and annotations. ``gateway_check`` and ``gateway_action``, the gateway's own
  tools, are always listed.
- ``_GatewayServer.call_tool`` replaces the SDK's tool manager for calls: the SDK does not
  validate arguments against a signature of its own. The arguments are validated once, by
  ``Gateway.admit`` with the tool's pydantic model (or the gateway's own tool's model),
  and the validated model goes on to planning and execution. The principal is derived
  once per request, here, and passed down.

Bad input is answered consistently, and no message ever echoes a value:

- unknown tool, arguments above ``Settings.max_argument_bytes`` → protocol error
  (``MCPError`` ``INVALID_PARAMS``): the request itself is unacceptable;
- arguments that fail validation, or that the backend finds unusable while preparing (an
  unknown kind, a manifest above its limit) → ``is_error`` result naming each field and
  what is expected, so the model can correct the call.

Both are audited as ``rejected_request``; nothing reaches OPA or a backend.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from mcp_types import Tool as ListedTool
from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Principal
from gateway.errors import (
    AuditError,
    BackendError,
    ConfigError,
    InvalidArguments,
    PayloadTooLarge,
    QueueError,
    UnknownAction,
    UnknownTool,
)
from gateway.identity import principal_for_request
from gateway.instruments import Instruments
from gateway.kubernetes.tools import open_backend as kubernetes_backend
from gateway.palette.tools import ReadFn, palette_configured, register_resources
from gateway.palette.tools import open_backend as palette_backend
from gateway.ports import BackendPolicy
from gateway.replies import decision_reply, error_reply, executed_reply, outcome_reply, parked_reply
from gateway.runtime import Runtime, RuntimeSlot, ToolSource, open_runtime
from gateway.session import SessionLedger, transport_session_id
from gateway.settings import Settings
from gateway.tools import ToolRegistry, ToolSpec

__all__ = ["META_TOOLS", "WAIT_META_KEY", "build_server"]

log = logging.getLogger(__name__)

WAIT_META_KEY = "policy-gateway/wait_seconds"
"""Request ``_meta`` key: how long a call needing approval may wait for it (bounded by settings)."""

_INSTRUCTIONS = """\
Every tool call is judged by policy before it runs. A denied call returns an error listing
each reason (code and message): change the request rather than retrying it. A call that
needs human approval is parked and returns an action id; a human approves it with
`gateway queue approve <id>`, then it runs once; ask `gateway_action` for its state and
result. `gateway_check` tells you what policy would decide about a call without running it.
`gateway_rollback` undoes an executed change, as a call policy judges like any other.
"""


class CheckArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(
        min_length=1, max_length=128, description="Name of the tool to evaluate, e.g. k8s_scale."
    )
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="The arguments the tool would be called with."
    )


class ActionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_id: str = Field(
        min_length=4,
        max_length=64,
        pattern=r"^[A-Za-z0-9-]+$",
        description="The action id a call needing approval returned (or a unique prefix of it).",
    )


META_TOOLS: Mapping[str, type[BaseModel]] = {"gateway_check": CheckArgs, "gateway_action": ActionArgs}


def build_server(
    settings: Settings,
    *,
    backends: Sequence[ToolSource] | None = None,
    slot: RuntimeSlot | None = None,
    instruments: Instruments | None = None,
) -> MCPServer[Runtime]:
    """The gateway's MCP server. ``backends`` defaults to ``_backends(settings)``; tests pass
    their own tool sources. ``slot`` receives the runtime while it is open (the approvals API).
    ``instruments`` replace the ones built from settings (tests with their own tracer)."""
    sources = list(backends) if backends is not None else _backends(settings)

    @asynccontextmanager
    async def lifespan(server: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        async with open_runtime(settings, sources, slot=slot, instruments=instruments) as runtime:
            if isinstance(server, _GatewayServer):
                server.publish(runtime.registry)
            yield runtime

    server = _GatewayServer(
        settings,
        name="policy-gateway",
        title="Policy gateway",
        instructions=_INSTRUCTIONS,
        lifespan=lifespan,
    )
    if backends is None and palette_configured(settings):
        register_resources(server, read=_resource_reader(settings, server))
    return server


def _backends(settings: Settings) -> list[ToolSource]:
    """Every backend the gateway offers; each line opens one backend's client and tools.

    A backend whose configuration cannot be loaded is left out with an error in the log,
    so one unconfigured backend does not take the others down; Palette leaves itself out
    when ``PALETTE_*`` is not set.
    """
    _ = settings
    return [
        _optional("kubernetes", kubernetes_backend),
        _optional("palette", palette_backend),
    ]


def _optional(name: str, source: ToolSource) -> ToolSource:
    @asynccontextmanager
    async def open_backend(settings: Settings, policy: BackendPolicy) -> AsyncIterator[list[ToolSpec[Any]]]:
        async with AsyncExitStack() as stack:
            try:
                specs = await stack.enter_async_context(source(settings, policy))
            except ConfigError as exc:
                log.error("%s tools are not offered: %s", name, exc)  # noqa: TRY400 - no traceback: a setting
                specs = []
            yield specs

    return open_backend


def _resource_reader(settings: Settings, server: _GatewayServer) -> ReadFn:
    """Resources are reads: they run through ``Gateway.call`` like the tool they summarise."""

    async def read(tool: str, arguments: dict[str, Any], ctx: Context[Any, Any]) -> Any:
        runtime, principal, _ = _request(ctx, settings)
        try:
            with server.sessions.bound(ctx.request_context, principal):
                outcome = await runtime.gateway.call(
                    tool, arguments, principal, session=_session_of(ctx, server.own_session)
                )
        except (UnknownTool, InvalidArguments, PayloadTooLarge) as exc:
            raise ResourceError(str(exc)) from None
        if outcome.status == "executed":
            return outcome.result
        reply = outcome_reply(outcome)
        raise ResourceError("\n".join(c.text for c in reply.content if isinstance(c, TextContent)))

    return read


# -- tools/list and tools/call -------------------------------------------------------------

_OwnTool = Callable[[Runtime, Principal, Any], Awaitable[CallToolResult]]


class _GatewayServer(MCPServer[Runtime]):
    """``MCPServer`` whose tools are the gateway's: listed from their specs, called through
    the pipeline (see the module docstring). Everything else (resources, lifespan, the
    transports, progress) is the SDK's."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        # Which MCP sessions read untrusted content (gateway.session), for this server's life.
        self.sessions = SessionLedger()
        # The session of a stdio or in-process client: one for this server's life.
        self.own_session = f"server-{uuid.uuid4().hex}"
        self._listed: dict[str, ListedTool] = {
            name: ListedTool(
                name=name,
                title=title,
                description=description,
                input_schema=META_TOOLS[name].model_json_schema(),
                annotations=ToolAnnotations(
                    title=title, read_only_hint=True, idempotent_hint=True, open_world_hint=False
                ),
            )
            for name, (title, description) in _OWN_TOOLS.items()
        }

    def publish(self, registry: ToolRegistry) -> None:
        """List every backend tool (once: a server run twice keeps its first listing)."""
        for spec in registry:
            self._listed.setdefault(spec.name, _listing(spec))

    async def list_tools(self) -> list[ListedTool]:
        return list(self._listed.values())

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Runtime, Any] | None = None
    ) -> CallToolResult:
        if context is None or not isinstance(context.request_context.lifespan_context, Runtime):
            raise MCPError(code=INTERNAL_ERROR, message="the gateway is not ready; nothing was run")
        runtime, principal, params = _request(context, self._settings)
        with self.sessions.bound(context.request_context, principal):
            return await self._call(runtime, principal, params, name, arguments, context)

    async def _call(
        self,
        runtime: Runtime,
        principal: Principal,
        params: Mapping[str, Any],
        name: str,
        arguments: dict[str, Any],
        context: Context[Runtime, Any],
    ) -> CallToolResult:
        gateway = runtime.gateway
        if name in META_TOOLS:
            try:
                args = await gateway.admit_own(name, META_TOOLS[name], arguments, principal)
            except PayloadTooLarge as exc:
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
            except InvalidArguments as exc:
                return error_reply(str(exc))
            return await _OWN_HANDLERS[name](runtime, principal, args)
        # One instrumented call (gateway.instruments): admission to reply.
        with gateway.instruments.call(name):
            try:
                admitted = await gateway.admit(name, arguments, principal)
            except (UnknownTool, PayloadTooLarge) as exc:
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
            except InvalidArguments as exc:
                return error_reply(str(exc))
            try:
                outcome = await gateway.run(
                    admitted,
                    principal,
                    session=_session_of(context, self.own_session),
                    wait_seconds=_wait_seconds(params),
                    progress=context.report_progress,
                )
            except (InvalidArguments, PayloadTooLarge) as exc:
                # Admitted, but the backend found the arguments unusable while preparing
                # (an unknown kind, a manifest above its limit): the model can fix them.
                return error_reply(str(exc))
            except AuditError as exc:
                # Nothing runs unrecorded: the decision could not be written, so nothing ran.
                log.error("%s refused: the audit log could not be written: %s", name, exc)  # noqa: TRY400
                return error_reply(
                    f"{name} was not run: the gateway's audit log is unavailable; try again later"
                )
            with gateway.instruments.stage("reply"):
                return outcome_reply(outcome)


def _listing(spec: ToolSpec[Any]) -> ListedTool:
    return ListedTool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.args.model_json_schema(),
        annotations=spec.annotations,
        _meta=spec.meta or None,
    )


async def _check(runtime: Runtime, principal: Principal, args: CheckArgs) -> CallToolResult:
    try:
        decision = await runtime.gateway.check(args.tool, args.arguments, principal)
    except (UnknownTool, InvalidArguments, PayloadTooLarge, BackendError) as exc:
        return error_reply(f"gateway_check: {exc}")
    return decision_reply(args.tool, decision)


async def _action(runtime: Runtime, principal: Principal, args: ActionArgs) -> CallToolResult:
    store = runtime.store
    try:
        try:
            parked = await store.get(await store.resolve(args.action_id))
        except UnknownAction:
            # Not parked: a write that ran at once is in the reversal journal.
            view = await store.journal.view(await store.journal.resolve(args.action_id))
            if view is None:
                raise
            return executed_reply(view, principal)
        return parked_reply(parked, principal, await store.journal.view(parked.id))
    except UnknownAction:
        return error_reply(
            f"gateway_action: no action has id {args.action_id!r} (neither parked nor an executed change)"
        )
    except QueueError as exc:
        log.warning("gateway_action could not read the queue: %s", exc)
        return error_reply("gateway_action: the approval queue could not be read; try again")


_OWN_HANDLERS: Mapping[str, _OwnTool] = {"gateway_check": _check, "gateway_action": _action}
_OWN_TOOLS: Mapping[str, tuple[str, str]] = {
    "gateway_check": (
        "Check a call against policy",
        "Evaluate a tool call against policy without executing or parking it. Returns the decision: "
        "outcome (allow, deny or needs_approval), every reason with its code, the approval it would "
        "need, and warnings.",
    ),
    "gateway_action": (
        "State of an action",
        "The state of an action parked for human approval (pending, approved, executing, succeeded, "
        "failed, denied, expired, cancelled, interrupted) or of a change that ran at once and, for the "
        "caller who requested it, its result once executed and whether, by whom and when it was "
        "rolled back.",
    ),
}


def _request(ctx: Context[Runtime, Any], settings: Settings) -> tuple[Runtime, Principal, Mapping[str, Any]]:
    request = ctx.request_context
    params = request.params if isinstance(request.params, Mapping) else {}
    return request.lifespan_context, principal_for_request(request.request, settings), params


def _session_of(ctx: Context[Any, Any], own: str) -> str | None:
    """Which MCP session a request belongs to, for runaway protection's per-session
    counts: a digest of the transport's session id (the id itself is a credential of
    sorts and is never stored); ``own``, the server's, for stdio and in-process (one
    client for the server's life); None for HTTP without sessions (stateless: the
    principal's counts are the only scope)."""
    request = ctx.request_context
    session_id = transport_session_id(request)
    if session_id is not None:
        return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]
    if getattr(request, "request", None) is not None:
        return None
    return own


def _wait_seconds(params: Mapping[str, Any]) -> float | None:
    meta = params.get("_meta")
    value = meta.get(WAIT_META_KEY) if isinstance(meta, Mapping) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
