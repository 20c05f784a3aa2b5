"""The one path every tool call takes: admit → prepare → decide → audit → execute, deny or park.

``Gateway.admit`` then ``Gateway.run`` (together: ``Gateway.call``) is the only way a tool
runs on behalf of a model, and ``Gateway.execute`` the only way a parked call runs after
approval (the queue's executor calls it through ``gateway.ports.CallRunner``).

Each thing is done once, in one place:

- **validation**: ``admit`` validates the arguments with the tool's pydantic model and the
  validated model is carried to ``prepare`` and ``execute``. A parked call is validated
  again only when ``execute`` loads it from the queue: the database is a different trust
  boundary from the request that proposed it.
- **fingerprint**: computed once per planned call (``PlannedCall.fingerprint`` caches it)
  right after planning; the audit records and the queue row carry that value.
- **redaction**: ``_execute`` is the redaction boundary. A result is redacted with the
  decision's obligations as it leaves the backend and nowhere else; the reply, the queue's
  stored result and ``gateway_action`` only ever hold what left it.
- **journal**: ``_execute`` also hands what a write changed (``ExecutionContext.changes``)
  to the reversal journal, for ``gateway_rollback``; also when the call failed after some
  changes, so those can be rolled back too.

Each step runs inside ``self.instruments.stage(name)`` (``gateway.instruments``), the one
seam that times it for ``/metrics``, traces it when tracing is on, and tells in-process
listeners; the front end wraps the whole call in ``instruments.call`` (``Gateway.call``
does it for callers that use it), and ``instruments.annotate`` records what the call
turned out to be (action id, effect, outcome, bundle revision).

Speculative reads (``Settings.speculative_reads``, off by default; docs/performance.md):
a tool marked ``ToolSpec.speculative`` starts its read when the call is planned, while
OPA decides; ``_run`` awaits that read instead of starting one only if the decision
allows the call and was recorded, and the read is cancelled and dropped otherwise.

Runaway protection: before planning, ``_history`` asks the activity log
(``gateway.history``) for the principal's and the session's recent counts, which every
proposed action carries as ``input.history``; after the decision the call is counted.
When the counts cannot be read, a call that changes something is denied by the gateway
itself (``GW-HISTORY-UNAVAILABLE``, OPA is not asked) and a read goes on without them.

Request errors are raised, not decided, and nothing is sent to OPA or a backend for them:
``PayloadTooLarge`` (canonical JSON of the arguments above ``Settings.max_argument_bytes``),
``UnknownTool`` and ``InvalidArguments`` (field-level message without values; also a number
JSON cannot carry exactly). Each is audited as ``rejected_request``. Everything after
admission ends in a ``CallOutcome``. Backend errors while preparing are reported as
failures (audited, not decided); argument errors a backend finds while preparing
(``InvalidArguments``, ``PayloadTooLarge``: an unknown kind, a malformed manifest) are
request errors as above. If the audit log cannot be written, the call stops there and
nothing executes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.arguments import check_size, validate_model
from gateway.changes import rollback_link
from gateway.contracts import (
    Decision,
    Effect,
    History,
    PlannedCall,
    Principal,
    ProposedAction,
)
from gateway.decisions import fail_closed, refuse_without_history
from gateway.errors import (
    AuditError,
    BackendError,
    GatewayError,
    HistoryUnavailable,
    InvalidArguments,
    PayloadTooLarge,
    QueueError,
    UnknownTool,
)
from gateway.identity import ANONYMOUS, CALLER
from gateway.instruments import Instruments
from gateway.metrics import Metrics
from gateway.observation import deciding
from gateway.outcome import CallOutcome, outcome_of_parked
from gateway.ports import (
    TERMINAL_STATES,
    ActivitySource,
    ApprovalQueue,
    AuditEvent,
    AuditSink,
    Journal,
    ParkedAction,
)
from gateway.redaction import redact, redact_text
from gateway.session import attach, remember
from gateway.settings import Settings
from gateway.tools import ExecutionContext, ToolRegistry, ToolSpec

__all__ = ["AdmittedCall", "CallOutcome", "Decider", "Gateway", "ProgressFn"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
"""``(progress, total, message)``: MCP progress notifications while waiting for approval."""

ModelT = TypeVar("ModelT", bound=BaseModel)

_POLL_SECONDS = 0.5
# The reason of the placeholder decision a speculative read carries (it never reads it).
CODE_SPECULATIVE = "GW-SPECULATIVE"
_MAX_ERROR_CHARS = 1000

# The principal of the call being handled (``gateway.identity.CALLER``), for tools that ask
# policy from inside a call (``palette_validate_configuration`` checks a create) or that
# depend on who asks (``gateway_rollback``): never taken from arguments.
_caller = CALLER


_EFFECT_RANK: dict[str, int] = {"read": 0, "write": 1, "delete": 2}


def _strictest_effect(planned: PlannedCall, spec: ToolSpec[Any]) -> Effect:
    """What a call counts as for runaway protection: the strictest effect its actions were
    judged with (a ``gateway_rollback`` that deletes is a delete), else the tool's."""
    return max((a.effect for a in planned.actions), key=_EFFECT_RANK.__getitem__, default=spec.effect)


class Decider(Protocol):
    """What the pipeline needs from the policy client (``gateway.policy.PolicyClient``)."""

    async def decide_all(self, actions: Sequence[ProposedAction]) -> Decision: ...


@dataclass(frozen=True)
class AdmittedCall:
    """A tool call past admission: the tool's spec and its arguments, validated once by the
    spec's model; what ``run`` plans, judges and executes."""

    spec: ToolSpec[Any]
    args: BaseModel


class Gateway:
    """The decision path over one registry, one policy client, one queue and one audit log."""

    def __init__(
        self,
        settings: Settings,
        registry: ToolRegistry,
        policy: Decider,
        queue: ApprovalQueue,
        audit: AuditSink,
        *,
        metrics: Metrics | None = None,
        instruments: Instruments | None = None,
        activity: ActivitySource | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._policy = policy
        self._queue = queue
        self._audit = audit
        self.instruments = instruments or Instruments(metrics)
        # None: recent activity is not counted and actions carry no history.
        self._activity = activity
        self._journal = journal

    # -- the one path -------------------------------------------------------------------

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        principal: Principal,
        *,
        session: str | None = None,
        wait_seconds: float | None = None,
        progress: ProgressFn | None = None,
    ) -> CallOutcome:
        """``admit`` then ``run``, as one instrumented call. Raises only the request errors
        (see the module docstring)."""
        with self.instruments.call(tool):
            admitted = await self.admit(tool, arguments, principal)
            return await self.run(
                admitted, principal, session=session, wait_seconds=wait_seconds, progress=progress
            )

    async def admit(self, tool: str, arguments: Mapping[str, Any], principal: Principal) -> AdmittedCall:
        """Size check, tool lookup and argument validation; nothing leaves the process."""
        with self.instruments.stage("admit"):
            async with self._rejections(tool, principal):
                check_size(arguments, self.settings.max_argument_bytes)
                spec = self.registry.get(tool)
                return AdmittedCall(spec=spec, args=validate_model(tool, spec.args, arguments))

    async def admit_own(
        self, tool: str, model: type[ModelT], arguments: Mapping[str, Any], principal: Principal
    ) -> ModelT:
        """``admit`` for the gateway's own tools (``gateway_check``, ``gateway_action``),
        which no backend serves: size check and validation by ``model``."""
        async with self._rejections(tool, principal):
            check_size(arguments, self.settings.max_argument_bytes)
            return validate_model(tool, model, arguments)

    async def run(
        self,
        admitted: AdmittedCall,
        principal: Principal,
        *,
        session: str | None = None,
        wait_seconds: float | None = None,
        progress: ProgressFn | None = None,
    ) -> CallOutcome:
        """Run one admitted call through policy. ``session`` names the MCP session for
        runaway protection (None: no session scope). Raises only the request errors a
        backend finds while preparing (see the module docstring)."""
        started = time.perf_counter()
        tool = admitted.spec.name
        stage = self.instruments.stage
        token = _caller.set(principal)
        try:
            history = await self._history(principal, session, reuse=admitted.spec.effect == "read")
            try:
                with stage("prepare"):
                    planned = await self._plan(admitted, principal, history)
            except BackendError as exc:
                return await self._prepare_failed(admitted.spec, principal, exc)
            except (InvalidArguments, PayloadTooLarge) as exc:
                await self.record_rejection(tool, principal, exc)
                raise
            ahead = self._speculate(admitted, planned)
            try:
                decision = await self._decide(planned, admitted.spec.effect, history)
                if self._activity is not None:
                    self._activity.record(
                        principal.subject, session, _strictest_effect(planned, admitted.spec)
                    )
                self._observe_decision(planned, decision)
                with stage("audit"):
                    await self._record_decision(planned, decision, principal)
            except BaseException:
                _discard(ahead)  # nothing runs, or is returned, unrecorded
                raise
            if decision.outcome != "allow":
                _discard(ahead)
            log.info(
                "%s by %s: %s %s (%.1f ms)",
                tool,
                principal.subject,
                decision.outcome,
                [r.code for r in decision.reasons],
                (time.perf_counter() - started) * 1000,
            )
            if decision.outcome == "deny":
                return CallOutcome(
                    status="denied", tool=tool, action_id=planned.id, decision=decision, denied_by="policy"
                )
            if decision.outcome == "needs_approval":
                with stage("park"):
                    parked = await self._park(planned, decision, principal)
                if isinstance(parked, CallOutcome):
                    return parked
                return remember(planned, await self._wait(parked, decision, wait_seconds, progress))
            return remember(planned, await self._run(admitted, planned, decision, principal, ahead))
        finally:
            _caller.reset(token)

    async def check(self, tool: str, arguments: Mapping[str, Any], principal: Principal) -> Decision:
        """The decision a call would get, without executing or parking anything.

        Raises the request errors, and ``BackendError`` when the call cannot be prepared.
        """
        planned = await self._plan(await self.admit(tool, arguments, principal), principal)
        with deciding(planned.id, "check"):
            decision = await self._policy.decide_all(planned.actions)
        await self._record_decision(planned, decision, principal, detail={"check": True})
        return decision

    async def check_as_caller(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``check`` for backends, as the principal of the call in progress (anonymous outside one).

        Returns the decision as JSON (no images: a decision never carries them).
        """
        decision = await self.check(tool, arguments, _caller.get(ANONYMOUS))
        return decision.model_dump(mode="json")

    async def record_rejection(self, tool: str, principal: Principal, exc: Exception) -> None:
        """Audit a request refused before policy saw it (bad size, name or arguments)."""
        self.instruments.annotate(outcome="rejected")
        with self.instruments.stage("audit"):
            await self._audit.record(
                AuditEvent(
                    kind="rejected_request",
                    tool=tool[:200],
                    subject=principal.subject,
                    transport=principal.transport,
                    detail={"error": type(exc).__name__, "message": str(exc)[:_MAX_ERROR_CHARS]},
                )
            )

    @asynccontextmanager
    async def _rejections(self, tool: str, principal: Principal) -> AsyncIterator[None]:
        """Audit the request errors raised inside the block, and let them through."""
        try:
            yield
        except (PayloadTooLarge, UnknownTool, InvalidArguments) as exc:
            await self.record_rejection(tool, principal, exc)
            raise

    # -- the queue executor's side (gateway.ports.CallRunner) ----------------------------

    async def execute(self, call: PlannedCall, decision: Decision) -> Any:
        """Run a parked call exactly as stored and return its redacted result.

        The stored arguments are validated again: they come from the database, another
        trust boundary than the request admitted when the call was proposed. Raises
        ``BackendError`` (also for unexpected failures, logged here, and for a stored call
        that no longer validates).
        """
        try:
            spec = self.registry.get(call.tool)
            args = spec.args.model_validate(call.call_args)
        except (UnknownTool, ValidationError) as exc:
            raise BackendError(
                f"the stored call to {call.tool} can no longer be run: {type(exc).__name__}"
            ) from exc
        with self.instruments.call(call.tool, counted=False):
            self.instruments.annotate(action_id=call.id, effect=spec.effect, outcome=decision.outcome)
            return await self._execute(spec, args, call, decision)

    # -- steps ---------------------------------------------------------------------------

    async def _history(
        self, principal: Principal, session: str | None, *, reuse: bool
    ) -> History | HistoryUnavailable | None:
        """The recent activity every action of the call carries; the failure itself when it
        could not be read (``_decide`` refuses writes then); None when not counted."""
        if self._activity is None:
            return None
        with self.instruments.stage("history"):
            try:
                return await self._activity.history(principal.subject, session, reuse=reuse)
            except HistoryUnavailable as exc:
                log.warning("recent activity of %s unavailable: %s", principal.subject, exc)
                return exc

    async def _decide(
        self, planned: PlannedCall, effect: str, history: History | HistoryUnavailable | None
    ) -> Decision:
        """Policy's decision; without recent activity a change is refused here, unasked."""
        if isinstance(history, HistoryUnavailable) and effect != "read":
            return refuse_without_history(str(history))
        with self.instruments.stage("decide"), deciding(planned.id, "call"):
            return await self._policy.decide_all(planned.actions)

    async def _plan(
        self,
        admitted: AdmittedCall,
        principal: Principal,
        history: History | HistoryUnavailable | None = None,
    ) -> PlannedCall:
        """Resolve targets and images (``spec.prepare``) into the call policy will judge,
        with the principal's recent activity, and fingerprint it (once: the audit records
        and the queue row carry this value).

        Raises ``BackendError``; an unexpected failure is logged and raised as one.
        """
        spec, args = admitted.spec, admitted.args
        counted = history if isinstance(history, History) else None
        try:
            # With the MCP session's untrusted reads, if it made any (gateway.session).
            planned = attach(spec.plan(args, await spec.prepare(args), principal, counted))
        except (BackendError, InvalidArguments, PayloadTooLarge):
            raise
        except Exception as exc:
            _log_crash(spec.name, "preparing", exc)
            raise BackendError(
                f"{spec.name} failed unexpectedly while preparing; see the gateway log"
            ) from exc
        try:
            planned.fingerprint()
        except ValueError as exc:
            # The arguments were checked at admission: the backend's images hold the value.
            raise BackendError(
                f"{spec.name} cannot be judged: the live object holds a value JSON cannot carry "
                f"exactly ({exc})"
            ) from exc
        return planned

    async def _prepare_failed(
        self, spec: ToolSpec[Any], principal: Principal, exc: BackendError
    ) -> CallOutcome:
        message = _clean(f"{spec.name} could not be prepared: {exc}")
        call_id = str(uuid.uuid4())
        self.instruments.annotate(action_id=call_id, effect=spec.effect, outcome="error")
        with self.instruments.stage("audit"):
            await self._audit.record(
                AuditEvent(
                    kind="failure",
                    action_id=call_id,
                    tool=spec.name,
                    subject=principal.subject,
                    transport=principal.transport,
                    detail={"stage": "prepare", "error": message},
                )
            )
        return CallOutcome(status="failed", tool=spec.name, action_id=call_id, error=message)

    def _speculate(self, admitted: AdmittedCall, call: PlannedCall) -> asyncio.Future[Any] | None:
        """With ``speculative_reads``, a speculative tool's read started now, before policy
        has decided; the caller gets its result only once the decision allows the call.
        The context carries a fail-closed placeholder: such a tool never reads the decision."""
        if not (self.settings.speculative_reads and admitted.spec.speculative):
            return None
        placeholder = fail_closed(CODE_SPECULATIVE, "a speculative read runs before its decision")
        context = ExecutionContext(call=call, decision=placeholder)
        return asyncio.ensure_future(admitted.spec.execute(admitted.args, context))

    async def _execute(
        self,
        spec: ToolSpec[Any],
        args: BaseModel,
        call: PlannedCall,
        decision: Decision,
        ahead: asyncio.Future[Any] | None = None,
    ) -> Any:
        """The backend runs the call with its validated arguments (or the read started
        ahead of the decision is awaited); the result is redacted here, the redaction
        boundary (see the module docstring).

        Raises ``BackendError`` (also for unexpected failures, logged here).
        """
        ctx = ExecutionContext(call=call, decision=decision)
        try:
            with self.instruments.stage("execute"):
                if ahead is not None:
                    result = await ahead
                else:
                    result = await spec.execute(args, ctx)
        except BackendError:
            await self._keep_changes(ctx, complete=False)
            raise
        except Exception as exc:
            _log_crash(call.tool, "executing", exc)
            await self._keep_changes(ctx, complete=False)
            raise BackendError(f"{call.tool} failed unexpectedly; see the gateway log") from exc
        await self._keep_changes(ctx, complete=True)
        with self.instruments.stage("redact"):
            return redact(result, decision.obligations.redact)

    async def _keep_changes(self, ctx: ExecutionContext, *, complete: bool) -> None:
        """Journal what the call changed. The call has run: a journal that cannot be written
        is logged (that call cannot be rolled back), never reported as the call failing."""
        if self._journal is None or not ctx.changes:
            return
        try:
            with self.instruments.stage("journal"):
                await self._journal.record(ctx.call, list(ctx.changes), ctx.decision, complete=complete)
        except GatewayError as exc:
            log.error(  # noqa: TRY400 - the message says what failed
                "%s %s ran, but its changes could not be journaled, so it cannot be rolled back: %s",
                ctx.call.tool,
                ctx.call.id,
                exc,
            )

    async def _run(
        self,
        admitted: AdmittedCall,
        call: PlannedCall,
        decision: Decision,
        principal: Principal,
        ahead: asyncio.Future[Any] | None = None,
    ) -> CallOutcome:
        spec = admitted.spec
        try:
            result = await self._execute(spec, admitted.args, call, decision, ahead)
        except BackendError as exc:
            message = _clean(f"{spec.name} failed: {exc}")
            with self.instruments.stage("audit"):
                await self._record(
                    call, principal, "failure", decision, {"stage": "execute", "error": message}
                )
            return CallOutcome(
                status="failed", tool=spec.name, action_id=call.id, decision=decision, error=message
            )
        if spec.effect != "read":
            # Reads are frequent and their decision record says they ran; writes get both.
            try:
                with self.instruments.stage("audit"):
                    await self._record(call, principal, "execution", decision, {})
            except AuditError as exc:
                # The call has run: saying otherwise would invite a second run.
                log.error("%s %s ran; its execution record failed: %s", spec.name, call.id, exc)  # noqa: TRY400
        return CallOutcome(
            status="executed",
            tool=spec.name,
            action_id=call.id,
            decision=decision,
            result=result,
            effect=spec.effect,
        )

    async def _park(
        self, call: PlannedCall, decision: Decision, principal: Principal
    ) -> ParkedAction | CallOutcome:
        # The queue audits the parking in the same transaction as the row it writes.
        try:
            return await self._queue.park(call, decision, principal)
        except QueueError as exc:
            log.error("%s %s could not be parked: %s", call.tool, call.id, exc)  # noqa: TRY400
            return CallOutcome(
                status="failed",
                tool=call.tool,
                action_id=call.id,
                decision=decision,
                error="the call needs approval but the approval queue could not store it; nothing was run",
            )

    async def _wait(
        self,
        parked: ParkedAction,
        decision: Decision,
        wait_seconds: float | None,
        progress: ProgressFn | None,
    ) -> CallOutcome:
        wait = self.settings.approval_wait_seconds if wait_seconds is None else wait_seconds
        wait = max(0.0, min(wait, self.settings.max_approval_wait_seconds))
        deadline = time.monotonic() + wait
        current = parked
        while wait > 0 and current.state not in TERMINAL_STATES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if progress is not None:
                await progress(
                    wait - remaining, wait, f"waiting for approval of {parked.id} ({current.state})"
                )
            # PostgreSQL wakes this at the approval's commit, on whichever replica; SQLite polls.
            await self._queue.wait_for_change(parked.id, min(_POLL_SECONDS, remaining))
            try:
                current = await self._queue.get(parked.id)
            except QueueError as exc:
                log.warning("stopped waiting for %s: the queue could not be read: %s", parked.id, exc)
                break
        return outcome_of_parked(current, decision)

    def _observe_decision(self, call: PlannedCall, decision: Decision) -> None:
        """What the call turned out to be, for its span and the metrics; the rule codes of
        every reason, warning and dry-run finding."""
        effect = call.actions[0].effect if call.actions else None
        self.instruments.annotate(
            action_id=call.id,
            effect=effect,
            outcome=decision.outcome,
            bundle_revision=decision.bundle_revision,
        )
        findings = (*decision.reasons, *decision.warnings, *decision.dryrun)
        self.instruments.metrics.record_violations((r.code, r.effect) for r in findings)

    async def _record_decision(
        self,
        call: PlannedCall,
        decision: Decision,
        principal: Principal,
        detail: dict[str, Any] | None = None,
    ) -> None:
        detail = dict(detail or {})
        # Warn and dry-run findings do not change the outcome; the audit keeps them anyway.
        if decision.warnings:
            detail["warnings"] = [r.code for r in decision.warnings]
        if decision.dryrun:
            detail["dryrun"] = [r.code for r in decision.dryrun]
        await self._record(call, principal, "decision", decision, detail)

    async def _record(
        self,
        call: PlannedCall,
        principal: Principal,
        kind: Literal["decision", "execution", "failure"],
        decision: Decision,
        detail: dict[str, Any],
    ) -> None:
        targets = [a.target.model_dump(exclude_none=True, exclude_defaults=True) for a in call.actions]
        if len(targets) > 1:
            detail = {**detail, "targets": targets[1:]}
        detail = {**rollback_link(call), **detail}
        await self._audit.record(
            AuditEvent(
                kind=kind,
                action_id=call.id,
                tool=call.tool,
                subject=principal.subject,
                transport=principal.transport,
                target=targets[0] if targets else {},
                outcome=decision.outcome,
                reasons=[r.model_dump() for r in decision.reasons],
                bundle_revision=decision.bundle_revision,
                decision_id=decision.decision_id,
                fingerprint=call.fingerprint(),
                detail=detail,
            )
        )


def _discard(ahead: asyncio.Future[Any] | None) -> None:
    """Drop a speculative read whose result policy did not allow (or that was never
    recorded): cancelled if still running, its outcome, whatever it was, never seen."""
    if ahead is None:
        return
    ahead.cancel()
    ahead.add_done_callback(lambda task: task.cancelled() or task.exception())


def _log_crash(tool: str, stage: str, exc: Exception) -> None:
    # The exception's text is cleaned like any payload; the traceback only at debug level.
    log.error("%s raised %s while %s: %s", tool, type(exc).__name__, stage, _clean(str(exc)))
    log.debug("traceback of the %s failure", tool, exc_info=exc)


def _clean(message: str) -> str:
    return redact_text(message)[:_MAX_ERROR_CHARS]
