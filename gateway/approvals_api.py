"""The approvals API beside ``/mcp``: what ``gateway queue`` does, over HTTP, as the caller.

Every route needs an authenticated principal (a bearer token from the tokens file or an
OIDC JWT, checked by ``gateway.auth``); the approver and their groups come from that
credential only, never from the request body. JSON in, JSON out::

    GET  /api/v1/whoami                      the caller's principal
    GET  /api/v1/actions?state=&limit=       parked actions, newest first (``queue list``)
    GET  /api/v1/actions/{id}                one action, secrets redacted (``queue show``)
    POST /api/v1/actions/{id}/statement      the statement to sign: {"reason"} -> {"statement", ...}
    POST /api/v1/actions/{id}/approve        {"reason", "fingerprint", "statement", "signature"}
    POST /api/v1/actions/{id}/deny           {"reason"}
    POST /api/v1/actions/{id}/cancel         {"reason"}
    POST /api/v1/actions/{id}/rollback       {"force"} -> the rollback's outcome (``queue rollback``)

``{id}`` may be a unique prefix of at least four characters; ``show`` and ``rollback`` also
take the id of a change that ran without approval (the reversal journal's). A rollback is
proposed as the caller, through the same path as an MCP call of ``gateway_rollback``:
judged, audited, run, parked or denied; its outcome is the answer (200), with ``status``
``executed``, ``pending`` (``approve_with``), ``denied`` or ``failed`` (a drifted object:
the error lists what changed). Errors are ``{"error": <kind>, "message": <sentence>}`` with
400 (bad request), 401 (no credential), 403 (approval refused: four-eyes, group, duplicate,
signature; a rollback the caller may not propose), 404 (unknown id), 409 (not in a state
that allows it: also an action that never ran, cannot be undone or was rolled back), 503
(policy engine unavailable: nothing recorded).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.audit import format_time
from gateway.contracts import Principal
from gateway.errors import (
    ApprovalRefused,
    AuditError,
    GatewayError,
    InvalidArguments,
    InvalidTransition,
    PolicyError,
    QueueError,
    RollbackRefused,
    UnknownAction,
)
from gateway.identity import PRINCIPAL_SCOPE_KEY
from gateway.ports import ActionState
from gateway.queue.approvals import Signed, approve
from gateway.queue.display import show_action
from gateway.queue.proofs import ApprovalStatement
from gateway.replies import approve_command
from gateway.rollback import ROLLBACK_TOOL
from gateway.runtime import Runtime, RuntimeSlot
from gateway.signers import NAMESPACE

__all__ = ["API_PREFIX", "approvals_routes"]

log = logging.getLogger(__name__)

API_PREFIX: Final[str] = "/api/v1"
_MAX_BODY: Final[int] = 64 * 1024
_STATUS: Final[tuple[tuple[type[GatewayError], int, str], ...]] = (
    (UnknownAction, 404, "unknown_action"),
    (InvalidTransition, 409, "invalid_state"),
    (ApprovalRefused, 403, "approval_refused"),
    (PolicyError, 503, "policy_unavailable"),
    (QueueError, 500, "storage"),
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Annotated[str, Field(max_length=2000)] | None = None


class _RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    force: bool = False


class _ApproveBody(_Body):
    fingerprint: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[0-9a-fA-F]+$")] | None = None
    statement: Annotated[str, Field(max_length=16_384)] | None = None
    signature: Annotated[str, Field(max_length=8192)] | None = None


_B = TypeVar("_B", bound=BaseModel)


class _BadRequest(Exception):
    pass


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message}, status_code=status)


Handler = Callable[[Request, Runtime, Principal], Awaitable[Any]]


def _endpoint(slot: RuntimeSlot, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authentication, the runtime, and errors as JSON, around one route's handler."""

    async def endpoint(request: Request) -> Response:
        principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
        if not isinstance(principal, Principal) or not principal.authenticated:
            return _error(401, "missing_token", "the approvals API needs an authenticated bearer token")
        runtime = slot.runtime
        if runtime is None:
            return _error(503, "not_ready", "the gateway is starting or stopping; try again")
        try:
            answer = await handler(request, runtime, principal)
            return answer if isinstance(answer, Response) else JSONResponse(answer)
        except _BadRequest as exc:
            return _error(400, "bad_request", str(exc))
        except GatewayError as exc:
            status, kind = next(((s, k) for cls, s, k in _STATUS if isinstance(exc, cls)), (500, "error"))
            if status == 500:
                log.error("approvals API: %s", exc)  # noqa: TRY400 - the message says what failed
            return _error(status, kind, str(exc))

    return endpoint


async def _body(request: Request, model: type[_B]) -> _B:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise _BadRequest(f"the request body is larger than {_MAX_BODY} bytes")
    try:
        return model.model_validate(json.loads(raw or b"{}"))
    except (ValueError, ValidationError) as exc:
        fields = []
        if isinstance(exc, ValidationError):
            fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)]
        raise _BadRequest("malformed JSON body" + (f" ({', '.join(fields)})" if fields else "")) from exc


async def _whoami(request: Request, runtime: Runtime, principal: Principal) -> Any:
    return {
        **principal.model_dump(mode="json"),
        "approval_signatures": runtime.settings.approval_signatures,
        "namespace": NAMESPACE,
    }


async def _list(request: Request, runtime: Runtime, principal: Principal) -> Any:
    state_text = request.query_params.get("state")
    try:
        state = ActionState(state_text) if state_text else None
        limit = int(request.query_params.get("limit", "50"))
    except ValueError as exc:
        raise _BadRequest("state must be an action state and limit a number") from exc
    if not 1 <= limit <= 10_000:
        raise _BadRequest("limit must be between 1 and 10000")
    rows = await runtime.store.list_actions(state=state, limit=limit)
    return [r.model_dump(mode="json") for r in rows]


async def _resolve(request: Request, runtime: Runtime) -> str:
    return await runtime.store.resolve(_ref(request))


async def _show(request: Request, runtime: Runtime, principal: Principal) -> Any:
    return await show_action(runtime.store, _ref(request))


def _ref(request: Request) -> str:
    ref = str(request.path_params["ref"])
    if not 4 <= len(ref) <= 64 or not all(c.isalnum() or c == "-" for c in ref):
        raise UnknownAction(f"no action has id {ref[:64]!r}")
    return ref


async def _statement(request: Request, runtime: Runtime, principal: Principal) -> Any:
    body = await _body(request, _Body)
    action = await runtime.store.get(await _resolve(request, runtime))
    now = format_time(runtime.store.now())
    statement = ApprovalStatement.for_action(action, principal.subject, principal.groups, now, body.reason)
    return {
        "statement": statement.text(),
        "namespace": NAMESPACE,
        "approval_signatures": runtime.settings.approval_signatures,
        "fingerprint": action.fingerprint,
    }


async def _approve(request: Request, runtime: Runtime, principal: Principal) -> Any:
    body = await _body(request, _ApproveBody)
    if body.signature is not None and body.statement is None:
        raise _BadRequest("a signature needs the statement it signs")
    action_id = await _resolve(request, runtime)
    signed = Signed(body.statement, body.signature) if body.statement is not None else None
    result = await approve(
        runtime.store,
        runtime.policy,
        action_id,
        principal,
        reason=body.reason,
        expect_fingerprint=body.fingerprint,
        proofs=runtime.proofs,
        signed=signed,
        clock=runtime.store.now,
    )
    return {
        "id": result.action.id,
        "state": result.action.state.value,
        "approver": principal.subject,
        "approvals": [a.model_dump(mode="json") for a in result.action.approvals],
        "decision": result.decision.model_dump(mode="json"),
        "missing": result.missing,
        "error": result.action.error,
        "denied_by": result.action.denied_by,
        "signed": body.signature is not None,
    }


async def _deny(request: Request, runtime: Runtime, principal: Principal) -> Any:
    body = await _body(request, _Body)
    if not body.reason:
        raise _BadRequest("a denial needs a reason (shown to the requester)")
    action = await runtime.store.deny(await _resolve(request, runtime), principal, body.reason)
    return {"id": action.id, "state": action.state.value, "by": principal.subject, "reason": body.reason}


async def _cancel(request: Request, runtime: Runtime, principal: Principal) -> Any:
    body = await _body(request, _Body)
    action = await runtime.store.cancel(await _resolve(request, runtime), principal, body.reason)
    return {"id": action.id, "state": action.state.value, "by": principal.subject, "reason": body.reason}


# How a refused rollback answers: (status, error kind) by ``RollbackRefused.reason``.
_REFUSED: Final[dict[str, tuple[int, str]]] = {
    "unknown": (404, "unknown_action"),
    "not_allowed": (403, "rollback_refused"),
}


async def _rollback(request: Request, runtime: Runtime, principal: Principal) -> Any:
    """Propose the rollback as the caller, through ``Gateway.call`` like any tool call."""
    body = await _body(request, _RollbackBody)
    arguments = {"action_id": _ref(request), "force": body.force}
    try:
        outcome = await runtime.gateway.call(ROLLBACK_TOOL, arguments, principal)
    except RollbackRefused as exc:
        status, kind = _REFUSED.get(exc.reason, (409, "invalid_state"))
        return _error(status, kind, str(exc))
    except InvalidArguments as exc:
        raise _BadRequest(str(exc)) from exc
    except AuditError as exc:
        return _error(503, "audit_unavailable", f"nothing was run: the audit log is unavailable ({exc})")
    decision = outcome.decision
    answer: dict[str, Any] = {
        "rollback_id": outcome.action_id,
        "status": outcome.status,
        "state": outcome.state.value if outcome.state else None,
        "decision": decision.model_dump(mode="json") if decision else None,
        "result": outcome.result,
        "error": outcome.error,
        "expires_at": outcome.expires_at,
    }
    if outcome.status == "pending":
        answer["approve_with"] = approve_command(outcome.action_id)
    return answer


def approvals_routes(slot: RuntimeSlot) -> list[Route]:
    """The API's routes over the runtime ``slot`` holds."""
    actions = f"{API_PREFIX}/actions"
    return [
        Route(f"{API_PREFIX}/whoami", _endpoint(slot, _whoami), methods=["GET"]),
        Route(actions, _endpoint(slot, _list), methods=["GET"]),
        Route(actions + "/{ref}", _endpoint(slot, _show), methods=["GET"]),
        Route(actions + "/{ref}/statement", _endpoint(slot, _statement), methods=["POST"]),
        Route(actions + "/{ref}/approve", _endpoint(slot, _approve), methods=["POST"]),
        Route(actions + "/{ref}/deny", _endpoint(slot, _deny), methods=["POST"]),
        Route(actions + "/{ref}/cancel", _endpoint(slot, _cancel), methods=["POST"]),
        Route(actions + "/{ref}/rollback", _endpoint(slot, _rollback), methods=["POST"]),
    ]
