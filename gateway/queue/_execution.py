"""The executor's side of the queue store (private): claiming approved actions,
finishing them, sweeping expiries and recovering executions whose process died.

A claim is a lease: the executing process renews ``heartbeat_at`` (by default every
``HEARTBEAT_SECONDS``). An execution is dead when its process is gone (same instance and
pid namespace: pid and start time), or, when this process cannot look (another replica
or container), when its lease (``lease_seconds``, default ``LEASE_SECONDS``) has lapsed.
The claim is the guarded ``approved → executing`` update: on PostgreSQL it takes the
row's lock, so of several replicas racing for one action exactly one changes the row and
the others, once it commits, change nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from gateway.audit import format_time
from gateway.contracts import Decision, canonical_json
from gateway.db import Connection
from gateway.errors import CorruptAction, InvalidTransition
from gateway.ports import ActionState, AuditEvent, AuditKind, ParkedAction
from gateway.queue._base import HEARTBEAT_SECONDS, LEASE_SECONDS, StoreBase, storage_errors
from gateway.queue._rows import action_event, encode_result, owner_alive

__all__ = ["HEARTBEAT_SECONDS", "LEASE_SECONDS", "ExecutionTransitions"]


class ExecutionTransitions(StoreBase):
    """approved → executing → succeeded | failed | interrupted, and live → expired."""

    async def claimable(self, *, limit: int = 20) -> list[str]:
        """Approved, unexpired actions, oldest first (a read: polling never takes the write lock)."""
        sql = "SELECT id FROM actions WHERE state = 'approved' AND expires_at > ? ORDER BY created_at LIMIT ?"
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(sql, [self._now(), limit])
        return [str(r[0]) for r in rows]

    async def expire_due(self) -> int:
        """Write the expiry of every live row past ``expires_at``; return how many."""
        now = self._now()
        sql = "SELECT id FROM actions WHERE state IN ('pending', 'approved') AND expires_at <= ?"
        with storage_errors():
            async with self.db.read() as conn:
                due = [str(r[0]) for r in await conn.fetchall(sql, [now])]
            count = 0
            for action_id in due:
                async with self.db.write() as conn:
                    action = await self._load_locked(conn, action_id)
                    expired = await self._expire_in(conn, action)
                if expired:
                    count += 1
                    self._emit("expired", action, "gateway")
        return count

    async def claim(self, action_id: str) -> ParkedAction | None:
        """approved → executing for this process; ``None`` if someone else got there first
        or the action is no longer approved (or expired)."""
        with storage_errors():
            async with self.db.write() as conn:
                now = self._now()
                claimed = await conn.execute(
                    "UPDATE actions SET state = 'executing', updated_at = ?, heartbeat_at = ?, "
                    "claimed_by = ? WHERE id = ? AND state = 'approved' AND expires_at > ?",
                    [now, now, self._owner, action_id, now],
                )
                if claimed != 1:
                    return None
                try:
                    action = await self._load(conn, action_id)
                except CorruptAction as exc:
                    await self._fail_corrupt(conn, action_id, str(exc))
                    return None
                detail = {"step": "claimed", "executor": json.loads(self._owner)}
                event = action_event(
                    "execution", action, subject="gateway", transport="internal", detail=detail
                )
                await self.audit.append(conn, event)
        return action

    async def heartbeat(self, action_id: str) -> bool:
        """Renew this process's lease on an execution; false if it is no longer ours."""
        with storage_errors():
            async with self.db.write() as conn:
                renewed = await conn.execute(
                    "UPDATE actions SET heartbeat_at = ? "
                    "WHERE id = ? AND state = 'executing' AND claimed_by = ?",
                    [self._now(), action_id, self._owner],
                )
        return renewed == 1

    async def _fail_corrupt(self, conn: Connection, action_id: str, error: str) -> None:
        await self._transition(conn, action_id, ActionState.EXECUTING, ActionState.FAILED, error=error)
        event = AuditEvent(kind="failure", action_id=action_id, subject="gateway", transport="internal")
        await self.audit.append(conn, event.model_copy(update={"detail": {"error": error}}))

    async def finish(
        self,
        action_id: str,
        state: ActionState,
        *,
        result: Any = None,
        error: str | None = None,
        decision: Decision | None = None,
    ) -> ParkedAction:
        """executing → succeeded (with ``result``), failed or interrupted (with ``error``)."""
        kinds: dict[ActionState, AuditKind] = {
            ActionState.SUCCEEDED: "execution",
            ActionState.FAILED: "failure",
            ActionState.INTERRUPTED: "interrupted",
        }
        updates: dict[str, Any] = {"error": error}
        if state is ActionState.SUCCEEDED:
            updates["result_json"] = encode_result(result)
        if decision is not None:
            updates["last_decision_json"] = canonical_json(decision.model_dump(mode="json"))
        with storage_errors():
            async with self.db.write() as conn:
                changed = await self._transition(
                    conn, action_id, ActionState.EXECUTING, state, owner=self._owner, **updates
                )
                if not changed:
                    raise InvalidTransition(f"action {action_id} is not executing")
                action = await self._load(conn, action_id)
                event = action_event(
                    kinds[state],
                    action,
                    subject="gateway",
                    transport="internal",
                    decision=decision,
                    detail={"step": state.value, "error": error},
                )
                await self.audit.append(conn, event)
        names = {ActionState.SUCCEEDED: "executed", ActionState.FAILED: "failed"}
        self._emit(names.get(state, "interrupted"), action, "gateway", error)
        return action

    async def recover_interrupted(self) -> int:
        """Mark executions whose process is gone, or whose lease lapsed, as interrupted:
        they may or may not have taken effect, so they are never re-run without a new
        approval. A lease renewed meanwhile keeps its execution (the guard re-checks it)."""
        stale = format_time(self._clock() - timedelta(seconds=self.lease_seconds))
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(
                    "SELECT id, claimed_by, heartbeat_at FROM actions WHERE state = 'executing'"
                )
            count = 0
            for action_id, owner, heartbeat in rows:
                alive = owner_alive(owner, self._instance)
                if alive or (alive is None and (heartbeat or "") > stale):
                    continue
                error = "the gateway stopped during execution; check the target before parking it again"
                async with self.db.write() as conn:
                    if await self._transition(
                        conn,
                        action_id,
                        ActionState.EXECUTING,
                        ActionState.INTERRUPTED,
                        owner=owner,
                        stale_before=None if alive is False else stale,
                        error=error,
                    ):
                        action = await self._load(conn, action_id)
                        detail = {"executor": json.loads(owner) if owner else None}
                        event = action_event(
                            "interrupted", action, subject="gateway", transport="internal", detail=detail
                        )
                        await self.audit.append(conn, event)
                        count += 1
                        self._emit("interrupted", action, "gateway", error)
        return count
