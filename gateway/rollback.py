"""``gateway_rollback``: undo an executed action, as an ordinary proposed action.

The tool is a ``ToolSpec`` like any other, so a rollback takes the one path every call
takes (``gateway.pipeline``): it is judged by policy, audited, parked for approval when
policy says so, and executed (now or after approval, by the queue's executor) with the
write guards. Its ``prepare``:

1. finds the executed action in the reversal journal (``gateway.ports.Journal``);
2. checks the caller may roll it back: its **requester** (same subject, authenticated), a
   member of an **approver group of the decision it ran under** (when it needed approval),
   or a member of ``GATEWAY_ROLLBACK_GROUPS``;
3. refuses what cannot be undone (a deleted Palette cluster) or was undone already;
4. asks the backend that made the changes (``ToolSpec.undo``, a ``gateway.tools.Reverser``)
   for the inverse: one proposed action per change, with that backend and effect, the
   live object as ``current`` and the inverse's dry-run as ``object``.

Steps 1-3 read only the gateway's database: an unknown id, an action that never executed
or changed nothing, someone else's action, or an irreversible one is a ``RollbackRefused``
(a request error) and nothing is sent to OPA or a backend. A drifted object is refused by
the backend in step 4 (``Drifted``) before policy is asked, unless ``force``.

Every inverse action's ``args`` tell policy what it is (``rego/rules/rollback``):
``rollback_of`` (the original action id), ``original_tool``, ``original_requester``,
``executed_at``, ``age_seconds``, ``rollback_of_rollback``, ``force``, and the backend's
facts (``inverse``, ``undoes``, ``drifted``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from gateway.changes import IRREVERSIBLE, JournalRecord
from gateway.contracts import Principal
from gateway.errors import BackendError, QueueError, RollbackRefused, UnknownAction
from gateway.identity import ANONYMOUS, CALLER
from gateway.ports import Journal
from gateway.tools import ExecutionContext, Prepared, ToolRegistry, ToolSpec, backend_spec

__all__ = ["ROLLBACK_TOOL", "RollbackArgs", "RollbackTool"]

ROLLBACK_TOOL: Final[str] = "gateway_rollback"
_TIME_FORMAT: Final[str] = "%Y-%m-%dT%H:%M:%S.%fZ"

StateOf = Callable[[str], Awaitable[str | None]]
"""The queue state of an action id (``None`` when the queue has none): why it never ran."""


class RollbackArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action_id: str = Field(
        min_length=4,
        max_length=64,
        pattern=r"^[A-Za-z0-9-]+$",
        description="The id of the executed action to undo (or a unique prefix of at least 4 characters).",
    )
    force: bool = Field(
        default=False,
        description="Roll back even though the object changed since the gateway's write; policy may "
        "require approval for it.",
    )


class RollbackTool:
    """The ``gateway_rollback`` spec over the journal and the registry's reversers."""

    def __init__(
        self,
        journal: Journal,
        registry: ToolRegistry,
        *,
        rollback_groups: tuple[str, ...] = (),
        state_of: StateOf | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._journal = journal
        self._registry = registry
        self._groups = frozenset(rollback_groups)
        self._state_of = state_of
        self._clock = clock

    def spec(self) -> ToolSpec[RollbackArgs]:
        spec: ToolSpec[RollbackArgs] = backend_spec(
            "gateway",
            ROLLBACK_TOOL,
            "Roll back an executed action",
            "Undo a change the gateway executed (an apply, scale, restart, resource change, delete, or "
            "Palette profile update or create), given its action id. The inverse is judged by policy like "
            "any call: it may be denied or need approval. Refused when the object changed since (unless "
            "force) and for what cannot be undone (a deleted Palette cluster).",
            RollbackArgs,
            self.prepare,
            self.execute,
            effect="write",
        )
        return spec

    async def prepare(self, args: RollbackArgs) -> list[Prepared]:
        record = await self._record(args.action_id)
        self._check(record, CALLER.get(ANONYMOUS))
        reverser = self._registry.reversers().get(record.backend)
        if reverser is None:
            raise RollbackRefused(
                f"action {record.action_id} changed {record.backend}, which this gateway does not serve "
                "now: it cannot be rolled back here",
                reason="unavailable",
            )
        facts = self._facts(record, args.force)
        return [
            replace(p, backend=p.backend or record.backend, policy_args={**(p.policy_args or {}), **facts})
            for p in await reverser.prepare(record.changes, args.force)
        ]

    async def execute(self, args: RollbackArgs, ctx: ExecutionContext) -> Any:
        original = ctx.call.actions[0].args.get("rollback_of") if ctx.call.actions else None
        if not isinstance(original, str):
            raise BackendError("the judged rollback names no action; nothing was run")
        try:
            record = await self._journal.find(original)
        except QueueError as exc:
            raise BackendError(
                f"the journal of action {original} cannot be read ({exc}); nothing was run"
            ) from exc
        if record.rolled_back is not None:
            by = record.rolled_back.by_action
            raise BackendError(f"action {original} was rolled back meanwhile by {by}; nothing was run")
        reverser = self._registry.reversers().get(record.backend)
        if reverser is None:
            raise BackendError(f"this gateway does not serve {record.backend} now; nothing was run")
        result = await reverser.execute(record.changes, ctx)
        return {"rollback_of": original, "original_tool": record.tool, **result}

    async def _record(self, ref: str) -> JournalRecord:
        try:
            return await self._journal.find(ref)
        except UnknownAction:
            state = await self._queue_state(ref)
        except QueueError as exc:
            raise BackendError(f"the reversal journal could not be read: {exc}") from exc
        if state == "succeeded":
            raise RollbackRefused(
                f"action {ref} ran, but the journal holds no change of it (it changed nothing, or ran "
                "before this gateway kept a journal): there is nothing to roll back",
                reason="not_executed",
            )
        if state is not None:
            raise RollbackRefused(
                f"action {ref} is {state}: it never executed, so there is nothing to roll back",
                reason="not_executed",
            )
        raise RollbackRefused(
            f"no executed change has id {ref!r}: the id is unknown, or that action never ran or changed "
            "nothing (reads and denied or pending calls have nothing to undo)",
            reason="unknown",
        )

    async def _queue_state(self, ref: str) -> str | None:
        if self._state_of is None:
            return None
        try:
            return await self._state_of(ref)
        except QueueError as exc:
            raise BackendError(f"the approval queue could not be read: {exc}") from exc

    def _check(self, record: JournalRecord, caller: Principal) -> None:
        """The caller may roll ``record`` back, and it can be undone (see the module docstring)."""
        own = caller.authenticated and caller.subject == record.requester.subject
        groups = self._groups | set(record.approver_groups)
        if not own and not (caller.authenticated and groups.intersection(caller.groups)):
            raise RollbackRefused(
                f"you may not roll back action {record.action_id}: only its requester, a member of an "
                "approver group of the decision it ran under, or of GATEWAY_ROLLBACK_GROUPS may",
                reason="not_allowed",
            )
        if record.rolled_back is not None:
            done = record.rolled_back
            raise RollbackRefused(
                f"action {record.action_id} was already rolled back by {done.subject} at {done.at} "
                f"(action {done.by_action}); roll back {done.by_action} to redo it",
                reason="rolled_back",
            )
        for change in record.changes:
            if change.kind in IRREVERSIBLE:
                raise RollbackRefused(
                    f"action {record.action_id} cannot be rolled back: {IRREVERSIBLE[change.kind]}",
                    reason="irreversible",
                )

    def _facts(self, record: JournalRecord, force: bool) -> dict[str, Any]:
        executed = datetime.strptime(record.executed_at, _TIME_FORMAT).replace(tzinfo=UTC)
        return {
            "rollback_of": record.action_id,
            "original_tool": record.tool,
            "original_requester": record.requester.subject,
            "original_complete": record.complete,
            "executed_at": record.executed_at,
            "age_seconds": max(0, int((self._clock() - executed).total_seconds())),
            "rollback_of_rollback": record.rollback_of is not None,
            "force": force,
        }
