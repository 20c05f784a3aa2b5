"""``Executor``: runs approved actions exactly once, inside the gateway process.

Each pass writes due expiries, then claims approved actions one by one (a guarded
approved → executing transition, so a second executor, in this process or another,
gets nothing). Before running a claimed action it checks that the stored call still
matches its fingerprint, that every approval was given to that fingerprint and carries the
proofs ``ApprovalProofs`` requires (an SSH signature by an allowed, unrevoked key; the
gateway's attestation), and asks policy again with the approvals as proven (the same
``reevaluate`` the approve flow uses). Only then does it run the call. Anything doubtful
fails the action without running it. A pass that is cancelled mid-execution marks the
action interrupted; a process that dies leaves it executing until its lease lapses (another
replica's pass) or the next start-up sees its pid gone, and either marks it interrupted
(``QueueStore.recover_interrupted``). Either way it is never re-run without a new
approval. An outcome the database cannot take right now is retried within the lease.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import anyio

from gateway.audit import format_time
from gateway.contracts import Decision
from gateway.errors import AuditError, DatabaseError, GatewayError, PolicyError, ProofRefused, QueueError
from gateway.ports import ActionState, AuditSink, CallRunner, ParkedAction
from gateway.queue._rows import action_event
from gateway.queue.proofs import ApprovalProofs
from gateway.queue.reevaluation import PolicyEvaluator, reevaluate
from gateway.queue.store import QueueStore

__all__ = ["DEFAULT_CHECKPOINT_SECONDS", "DEFAULT_POLL_SECONDS", "Executor"]

DEFAULT_POLL_SECONDS: Final[float] = 0.2
DEFAULT_CHECKPOINT_SECONDS: Final[float] = 5.0
_log = logging.getLogger(__name__)


class Executor:
    """Polls ``store`` for approved actions, asks ``policy`` again and runs them through ``runner``."""

    def __init__(
        self,
        store: QueueStore,
        runner: CallRunner,
        audit: AuditSink,
        *,
        policy: PolicyEvaluator,
        proofs: ApprovalProofs | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
        heartbeat_seconds: float | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        self._store = store
        self._runner = runner
        self._policy = policy
        self._proofs = proofs or ApprovalProofs()
        self._audit = audit
        self._poll_seconds = poll_seconds
        self._checkpoint_seconds = checkpoint_seconds
        # Six renewals per lease: a replica that misses a few still holds its execution.
        self._heartbeat_seconds = heartbeat_seconds or store.lease_seconds / 6
        self._retry_seconds = retry_seconds
        # asyncio.Event, not anyio.Event: an executor may be built before the loop runs.
        self._stopping = asyncio.Event()

    async def run_forever(self) -> None:
        """Poll until ``stop()`` or cancellation; each pass first recovers interrupted executions.

        While it runs, WAL checkpoints happen here, between passes, instead of inside
        whichever commit (an approval, a parked call) happens to grow the WAL too far.
        """
        await self._store.db.defer_checkpoints()
        last_checkpoint = anyio.current_time()
        try:
            while not self._stopping.is_set():
                await self.run_once()
                if anyio.current_time() - last_checkpoint >= self._checkpoint_seconds:
                    await self._checkpoint()
                    last_checkpoint = anyio.current_time()
                with anyio.move_on_after(self._poll_seconds):
                    await self._stopping.wait()
        finally:
            with anyio.CancelScope(shield=True):
                await self._checkpoint()
                await self._store.db.defer_checkpoints(False)

    def stop(self) -> None:
        """Finish the action in hand, then leave ``run_forever``."""
        self._stopping.set()

    async def run_once(self) -> list[ParkedAction]:
        """One pass: mark dead executions interrupted, sweep expiries, then run every
        approved action this executor claims. Returns the actions it finished."""
        finished: list[ParkedAction] = []
        try:
            await self._store.recover_interrupted()
            await self._store.expire_due()
            candidates = await self._store.claimable()
        except GatewayError as exc:
            _log.error("executor could not read the queue, retrying on the next pass: %s", exc)
            return finished
        for action_id in candidates:
            if self._stopping.is_set():
                break
            try:
                action = await self._store.claim(action_id)
                if action is not None:
                    finished.append(await self._run(action))
            except GatewayError as exc:  # the queue or the audit log failed: keep polling
                # A claimed row left executing becomes interrupted when its lease lapses (another
                # replica sees it) or at the next start-up: never re-run.
                _log.error("executor could not finish action %s: %s", action_id, exc)
        return finished

    async def _run(self, action: ParkedAction) -> ParkedAction:
        problem = await self._store.integrity_problem(action)
        if problem is not None:
            return await self._fail(action, f"refused: {problem}")
        moment = self._store.now()
        try:
            approvals = self._proofs.verified(action, await self._store.stored_approvals(action.id), moment)
        except ProofRefused as exc:
            return await self._fail(action, f"refused: {exc}")
        try:
            decision = await reevaluate(self._policy, action.call, approvals, now=format_time(moment))
        except PolicyError as exc:
            return await self._fail(action, f"policy re-evaluation failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug there must fail the action, not the executor
            _log.error("re-evaluation of action %s raised %s", action.id, type(exc).__name__)
            return await self._fail(action, f"policy re-evaluation failed ({type(exc).__name__})")
        try:
            await self._record_reevaluation(action, decision)
        except AuditError as exc:
            # Nothing runs without its record (the same rule as on the decision path).
            return await self._fail(action, f"not executed: the audit log could not be written ({exc})")
        if decision.outcome != "allow":
            why = "; ".join(r.message for r in decision.reasons) or decision.outcome
            return await self._store.finish(
                action.id, ActionState.FAILED, error=f"policy no longer allows it: {why}", decision=decision
            )
        beat = asyncio.create_task(self._heartbeat(action.id))
        try:
            state, result, error = await self._execute(action, decision)
            return await self._record_outcome(action.id, state, result, error, decision)
        finally:
            beat.cancel()

    async def _execute(self, action: ParkedAction, decision: Decision) -> tuple[ActionState, Any, str | None]:
        """Run the call, once; what became of it. A cancelled run is recorded as interrupted."""
        try:
            return ActionState.SUCCEEDED, await self._runner.execute(action.call, decision), None
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._store.finish(
                    action.id,
                    ActionState.INTERRUPTED,
                    error="the gateway stopped during execution; check the target before parking it again",
                    decision=decision,
                )
            raise
        except GatewayError as exc:
            return ActionState.FAILED, None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a backend bug must fail the action, not the executor
            _log.error("execution of action %s raised %s", action.id, type(exc).__name__)
            return ActionState.FAILED, None, f"execution failed unexpectedly ({type(exc).__name__})"

    async def _record_outcome(
        self, action_id: str, state: ActionState, result: Any, error: str | None, decision: Decision
    ) -> ParkedAction:
        """``finish``, retried while the database cannot be written: the call ran, so what it
        did must be recorded, and it must not run again. The lease is renewed meanwhile
        (once the database answers); once it lapses, another replica or the next start-up
        marks the action interrupted, and this gives up."""
        deadline = anyio.current_time() + self._store.lease_seconds
        while True:
            try:
                return await self._store.finish(
                    action_id, state, result=result, error=error, decision=decision
                )
            except QueueError as exc:
                if not isinstance(exc.__cause__, DatabaseError) or anyio.current_time() >= deadline:
                    raise
                _log.warning("could not record the outcome of action %s yet, retrying: %s", action_id, exc)
                await anyio.sleep(self._retry_seconds)

    async def _record_reevaluation(self, action: ParkedAction, decision: Decision) -> None:
        detail = {"step": "re-evaluation before execution", "approvals": len(action.approvals)}
        await self._audit.record(action_event("decision", action, decision=decision, detail=detail))

    async def _heartbeat(self, action_id: str) -> None:
        """Renew the lease while the call runs, so no other host takes it for dead."""
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                await self._store.heartbeat(action_id)
            except QueueError as exc:
                _log.warning("could not renew the lease on action %s: %s", action_id, exc)

    async def _checkpoint(self) -> None:
        try:
            await self._store.db.checkpoint()
        except DatabaseError as exc:  # busy, or closed under us: try again later
            _log.warning("WAL checkpoint skipped: %s", exc)

    async def _fail(self, action: ParkedAction, error: str) -> ParkedAction:
        return await self._store.finish(action.id, ActionState.FAILED, error=error)
