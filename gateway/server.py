"""The MCP front end: an ``MCPServer`` whose every tool call goes through ``Gateway.call``.

Assembly, and why it is shaped this way:

- ``build_server(settings)`` is synchronous and opens nothing. The server's lifespan opens
  the runtime (``gateway.runtime.open_runtime``: OPA client, queue + audit database,
  backends, executor) once per run and yields it as the lifespan context, where every
  handler finds it (``ctx.request_context.lifespan_context``).
- Backends only know their tools once they are opened (``open_backend`` context managers
  create their client and yield ``ToolSpec`` lists), so backend tools are registered with
  MCP in the lifespan, before the first request is served: one generated function per
  spec, whose signature is built from ``spec.args`` (typed parameters, defaults,
  descriptions: the tool's input schema), whose docstring is ``spec.description`` and whose
  annotations come from the spec. The function holds no client: it reaches the runtime of
  the connection it serves, so a server run twice (tests) never calls a closed client.
- ``gateway_check`` and ``gateway_action`` are the gateway's own tools, always present.

Bad input is answered consistently, by ``_Admission`` (a ``ServerMiddleware`` on
``tools/call``) before the SDK validates anything, so no message ever echoes a value:

- unknown tool, arguments above ``Settings.max_argument_bytes`` → protocol error
  (``MCPError`` ``INVALID_PARAMS``): the request itself is unacceptable;
- arguments that fail validation → ``is_error`` result naming each field and what is
  expected, so the model can correct the call.

Both are audited as ``rejected_request``; nothing reaches OPA or a backend.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from gateway.arguments import check_size, validate_model
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
from gateway.kubernetes.tools import open_backend as kubernetes_backend
from gateway.palette.tools import ReadFn, palette_configured, register_resources
from gateway.palette.tools import open_backend as palette_backend
from gateway.replies import decision_reply, error_reply, outcome_reply, parked_reply
from gateway.runtime import CheckFn, Runtime, RuntimeSlot, ToolSource, open_runtime
from gateway.settings import Settings
from gateway.tools import ToolSpec

__all__ = ["META_TOOLS", "WAIT_META_KEY", "build_server"]

log = logging.getLogger(__name__)

WAIT_META_KEY = "policy-gateway/wait_seconds"
"""Request ``_meta`` key: how long a call needing approval may wait for it (bounded by settings)."""

_CONTEXT_PARAM = "gateway_context"

_INSTRUCTIONS = """\
Every tool call is judged by policy before it runs. A denied call returns an error listing
each reason (code and message): change the request rather than retrying it. A call that
needs human approval is parked and returns an action id; a human approves it with
`gateway queue approve <id>`, then it runs once; ask `gateway_action` for its state and
result. `gateway_check` tells you what policy would decide about a call without running it.
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
    settings: Settings, *, backends: Sequence[ToolSource] | None = None, slot: RuntimeSlot | None = None
) -> MCPServer[Runtime]:
    """The gateway's MCP server. ``backends`` defaults to ``_backends(settings)``; tests pass
    their own tool sources. ``slot`` receives the runtime while it is open (the approvals API)."""
    sources = list(backends) if backends is not None else _backends(settings)

    @asynccontextmanager
    async def lifespan(server: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        async with open_runtime(settings, sources, slot=slot) as runtime:
            await _register_backend_tools(server, runtime)
            yield runtime

    server: MCPServer[Runtime] = MCPServer(
        name="policy-gateway",
        title="Policy gateway",
        instructions=_INSTRUCTIONS,
        lifespan=lifespan,
        middleware=[_Admission(settings)],
    )
    _register_meta_tools(server, settings)
    if backends is None and palette_configured(settings):
        register_resources(server, read=_resource_reader(settings))
    return server


def _backends(settings: Settings) -> list[ToolSource]:
    """Every backend the gateway offers; each line opens one backend's client and tools.

    A backend whose configuration cannot be loaded is left out with an error in the log,
    so one unconfigured backend does not take the others down; Palette leaves itself out
    when ``PALETTE_*`` is not set.
    """
    _ = settings
    return [
        _optional("kubernetes", lambda s, _check: kubernetes_backend(s)),
        _optional("palette", palette_backend),
    ]


def _optional(name: str, source: ToolSource) -> ToolSource:
    @asynccontextmanager
    async def open_backend(settings: Settings, check: CheckFn) -> AsyncIterator[list[ToolSpec[Any]]]:
        async with AsyncExitStack() as stack:
            try:
                specs = await stack.enter_async_context(source(settings, check))
            except ConfigError as exc:
                log.error("%s tools are not offered: %s", name, exc)  # noqa: TRY400 - no traceback: a setting
                specs = []
            yield specs

    return open_backend


def _resource_reader(settings: Settings) -> ReadFn:
    """Resources are reads: they run through ``Gateway.call`` like the tool they summarise."""

    async def read(tool: str, arguments: dict[str, Any], ctx: Context[Any, Any]) -> Any:
        runtime, principal, _ = _request(ctx, settings)
        try:
            outcome = await runtime.gateway.call(tool, arguments, principal)
        except (UnknownTool, InvalidArguments, PayloadTooLarge) as exc:
            raise ResourceError(str(exc)) from None
        if outcome.status == "executed":
            return outcome.result
        reply = outcome_reply(outcome)
        raise ResourceError("\n".join(c.text for c in reply.content if isinstance(c, TextContent)))

    return read


# -- admission ------------------------------------------------------------------------------


class _Admission:
    """``tools/call`` pre-flight: size, tool name and arguments (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if ctx.method != "tools/call" or not isinstance(params, Mapping):
            return await call_next(ctx)
        name, arguments = params.get("name"), params.get("arguments") or {}
        runtime = ctx.lifespan_context
        if not isinstance(name, str) or not isinstance(arguments, Mapping):
            return await call_next(ctx)  # the SDK answers malformed requests itself
        if not isinstance(runtime, Runtime):
            raise MCPError(code=INTERNAL_ERROR, message="the gateway is not ready; nothing was run")
        principal = principal_for_request(ctx.request, self._settings)
        try:
            if name in META_TOOLS:
                try:
                    check_size(arguments, self._settings.max_argument_bytes)
                    validate_model(name, META_TOOLS[name], arguments)
                except (PayloadTooLarge, InvalidArguments) as exc:
                    await runtime.gateway.record_rejection(name, principal, exc)
                    raise
            else:
                await runtime.gateway.admit(name, arguments, principal)
        except (UnknownTool, PayloadTooLarge) as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        except InvalidArguments as exc:
            return error_reply(str(exc))
        return await call_next(ctx)


# -- tool functions -------------------------------------------------------------------------


async def _register_backend_tools(server: MCPServer[Runtime], runtime: Runtime) -> None:
    registered = {t.name for t in await server.list_tools()}
    for spec in runtime.registry:
        if spec.name in registered:
            continue
        server.add_tool(
            _tool_function(
                spec.name, spec.args, spec.description, _call_backend(spec.name, runtime.settings)
            ),
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=spec.annotations,
            meta=spec.meta or None,
            structured_output=False,
        )


def _call_backend(name: str, settings: Settings) -> Callable[[Context[Runtime, Any]], Any]:
    async def call(ctx: Context[Runtime, Any]) -> CallToolResult:
        runtime, principal, params = _request(ctx, settings)
        try:
            outcome = await runtime.gateway.call(
                name,
                params.get("arguments") or {},
                principal,
                wait_seconds=_wait_seconds(params),
                progress=ctx.report_progress,
            )
        except (InvalidArguments, PayloadTooLarge) as exc:
            # Admitted, but the backend found the arguments unusable while preparing
            # (an unknown kind, a manifest above its limit): the model can fix them.
            return error_reply(str(exc))
        except AuditError as exc:
            # Nothing runs unrecorded: the decision could not be written, so nothing ran.
            log.error("%s refused: the audit log could not be written: %s", name, exc)  # noqa: TRY400
            return error_reply(f"{name} was not run: the gateway's audit log is unavailable; try again later")
        return outcome_reply(outcome)

    return call


def _register_meta_tools(server: MCPServer[Runtime], settings: Settings) -> None:
    async def check(ctx: Context[Runtime, Any]) -> CallToolResult:
        runtime, principal, params = _request(ctx, settings)
        try:
            args = validate_model("gateway_check", CheckArgs, params.get("arguments") or {})
            decision = await runtime.gateway.check(args.tool, args.arguments, principal)
        except (UnknownTool, InvalidArguments, PayloadTooLarge, BackendError) as exc:
            return error_reply(f"gateway_check: {exc}")
        return decision_reply(args.tool, decision)

    async def action(ctx: Context[Runtime, Any]) -> CallToolResult:
        runtime, principal, params = _request(ctx, settings)
        try:
            args = validate_model("gateway_action", ActionArgs, params.get("arguments") or {})
            parked = await runtime.store.get(await runtime.store.resolve(args.action_id))
        except (UnknownAction, InvalidArguments) as exc:
            return error_reply(f"gateway_action: {exc}")
        except QueueError as exc:
            log.warning("gateway_action could not read the queue: %s", exc)
            return error_reply("gateway_action: the approval queue could not be read; try again")
        return parked_reply(parked, principal)

    meta = {
        "gateway_check": (
            check,
            "Check a call against policy",
            "Evaluate a tool call against policy without executing or parking it. Returns the decision: "
            "outcome (allow, deny or needs_approval), every reason with its code, the approval it would "
            "need, and warnings.",
        ),
        "gateway_action": (
            action,
            "State of a parked action",
            "The state of an action parked for human approval (pending, approved, executing, succeeded, "
            "failed, denied, expired, cancelled, interrupted) and, for the caller who requested it, its "
            "result once executed.",
        ),
    }
    for name, (body, title, description) in meta.items():
        server.add_tool(
            _tool_function(name, META_TOOLS[name], description, body),
            name=name,
            title=title,
            description=description,
            annotations=ToolAnnotations(
                title=title, read_only_hint=True, idempotent_hint=True, open_world_hint=False
            ),
            structured_output=False,
        )


def _tool_function(
    name: str, args: type[BaseModel], description: str, body: Callable[[Context[Runtime, Any]], Any]
) -> Callable[..., Any]:
    """An async function whose signature is ``args``' fields plus the MCP context.

    The SDK derives the input schema from the signature. The body ignores the validated
    keyword values and hands the raw arguments to the gateway, which validates them with
    ``args`` itself: one validation decides, the gateway's.
    """

    async def tool(**kwargs: Any) -> Any:
        return await body(kwargs[_CONTEXT_PARAM])

    parameters = [_parameter(field_name, field) for field_name, field in args.model_fields.items()]
    parameters.append(inspect.Parameter(_CONTEXT_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = description
    tool.__signature__ = inspect.Signature(parameters, return_annotation=CallToolResult)  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": CallToolResult}
    return tool


def _parameter(name: str, field: Any) -> inspect.Parameter:
    info = Field(
        description=field.description,
        title=field.title,
        examples=field.examples,
        alias=field.alias,
        json_schema_extra=field.json_schema_extra,
    )
    annotation = Annotated[(field.annotation, *field.metadata, info)]
    default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _request(ctx: Context[Runtime, Any], settings: Settings) -> tuple[Runtime, Principal, Mapping[str, Any]]:
    request = ctx.request_context
    params = request.params if isinstance(request.params, Mapping) else {}
    return request.lifespan_context, principal_for_request(request.request, settings), params


def _wait_seconds(params: Mapping[str, Any]) -> float | None:
    meta = params.get("_meta")
    value = meta.get(WAIT_META_KEY) if isinstance(meta, Mapping) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
