"""``QueueStore``: the approval queue over the gateway's database (``gateway.db``: SQLite or
PostgreSQL), and every guarded state transition.

Each transition is one ``UPDATE actions SET state = ? … WHERE id = ? AND state = ?``
whose row count is checked, inside the same write transaction as its audit record: two
approvers, cancellers or executors racing (in one process, several, or several replicas)
produce exactly one transition, and no transition exists without its audit row. A
transition that depends on what it read of the row first locks the row
(``Connection.lock_row``).
Live rows (pending, approved) past ``expires_at`` read as expired and are never
approvable or claimable, whether or not a sweep has written the expiry yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from gateway.audit import AuditLog, format_time
from gateway.contracts import Approval, Decision, PlannedCall, Principal, canonical_json
from gateway.db import Connection, Database
from gateway.errors import (
    ApprovalRefused,
    CorruptAction,
    DatabaseError,
    DuplicateKey,
    InvalidTransition,
    QueueError,
    StaleApprovals,
    UnknownAction,
)
from gateway.ports import ActionState, AuditKind, ParkedAction
from gateway.queue._base import LEASE_SECONDS, storage_errors
from gateway.queue._execution import ExecutionTransitions
from gateway.queue._rows import (
    SUMMARY_COLUMNS,
    ActionSummary,
    Clock,
    action_event,
    effective_state,
    requirement,
    summary_from_row,
    system_clock,
    target_summary,
)
from gateway.queue.journal import JournalStore
from gateway.queue.proofs import StoredApproval, proof_digests
from gateway.queue.sealing import Sealer
from gateway.settings import Settings

__all__ = ["DEFAULT_LIST_LIMIT", "ActionSummary", "QueueStore", "StoredProof"]

DEFAULT_LIST_LIMIT = 50
_MIN_PREFIX = 4


@dataclass(frozen=True)
class StoredProof:
    """What an approval row keeps besides who and when: the statement approved (canonical
    JSON), the approver's SSH signature over it, and the gateway's attestation."""

    statement: str | None = None
    signature: str | None = None
    attestation: str | None = None


class QueueStore(ExecutionTransitions):
    """``gateway.ports.ApprovalQueue`` over a ``Database``, auditing into ``audit``: parking,
    reading, approving, denying and cancelling here; the executor's transitions in
    ``ExecutionTransitions``."""

    @classmethod
    async def open(
        cls,
        target: Path | str,
        *,
        clock: Clock = system_clock,
        sealer: Sealer | None = None,
        instance: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        require_schema: bool = False,
        pool_size: int = 10,
        connect_timeout_seconds: float = 10.0,
    ) -> QueueStore:
        """Open the database at ``target`` (a SQLite path or a ``postgresql://`` URL; see
        ``Database.open``) and mark executions whose process died, or whose lease lapsed,
        as interrupted. ``sealer`` seals the calls parked from now on and opens sealed ones."""
        db = await Database.open(
            target,
            require_schema=require_schema,
            pool_size=pool_size,
            connect_timeout_seconds=connect_timeout_seconds,
        )
        store = cls(
            db,
            AuditLog(db, clock=clock),
            clock=clock,
            sealer=sealer,
            instance=instance,
            lease_seconds=lease_seconds,
        )
        try:
            await store.recover_interrupted()
        except BaseException:
            await db.close()
            raise
        return store

    @classmethod
    async def from_settings(
        cls,
        settings: Settings,
        *,
        sealer: Sealer | None = None,
        require_schema: bool = False,
        clock: Clock = system_clock,
    ) -> QueueStore:
        """The store ``settings`` configure: ``database_url`` or else ``db_path``, this
        replica's ``instance`` name and execution lease, the pool size and connect timeout."""
        return await cls.open(
            settings.database(),
            clock=clock,
            sealer=sealer,
            instance=settings.instance,
            lease_seconds=settings.execution_lease_seconds,
            require_schema=require_schema,
            pool_size=settings.database_pool_size,
            connect_timeout_seconds=settings.database_connect_timeout_seconds,
        )

    async def close(self) -> None:
        await self.db.close()

    @cached_property
    def journal(self) -> JournalStore:
        """The reversal journal: same database, keys, audit chain and clock as the queue."""
        return JournalStore(self.db, self.audit, sealer=self.sealer, clock=self._clock)

    async def resolve(self, ref: str) -> str:
        """The full id for ``ref``, an id or a unique prefix of at least four characters."""
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(
                    "SELECT id FROM actions WHERE id >= ? AND id < ? LIMIT 2", [ref, ref + "\U0010ffff"]
                )
        ids = [str(r[0]) for r in rows]
        if ref in ids or (len(ids) == 1 and len(ref) >= _MIN_PREFIX):
            return ref if ref in ids else ids[0]
        if len(ids) > 1 and len(ref) >= _MIN_PREFIX:
            raise UnknownAction(f"{ref!r} matches more than one action: give more of the id")
        raise UnknownAction(f"no parked action has id {ref!r}")

    async def state_of(self, ref: str) -> str | None:
        """The effective state of the parked action ``ref`` (id or unique prefix), or ``None``
        when there is none; reads the state only (the call stays sealed)."""
        try:
            action_id = await self.resolve(ref)
        except UnknownAction:
            return None
        with storage_errors():
            async with self.db.read() as conn:
                row = await conn.fetchone("SELECT state, expires_at FROM actions WHERE id = ?", [action_id])
        return effective_state(str(row[0]), str(row[1]), self._now()).value if row else None

    async def list_actions(
        self, *, state: ActionState | None = None, limit: int = DEFAULT_LIST_LIMIT
    ) -> list[ActionSummary]:
        """Newest first; ``state`` filters by the effective state (expiry applied)."""
        now = self._now()
        base = f"SELECT {SUMMARY_COLUMNS} FROM actions"  # noqa: S608 - constants
        order = "ORDER BY created_at DESC LIMIT ?"
        params: list[str | int]
        if state is None:
            sql, params = f"{base} {order}", [limit]
        elif state in (ActionState.PENDING, ActionState.APPROVED):
            sql, params = f"{base} WHERE state = ? AND expires_at > ? {order}", [state.value, now, limit]
        elif state is ActionState.EXPIRED:
            where = "state = 'expired' OR (state IN ('pending', 'approved') AND expires_at <= ?)"
            sql, params = f"{base} WHERE {where} {order}", [now, limit]
        else:
            sql, params = f"{base} WHERE state = ? {order}", [state.value, limit]
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(sql, params)
        return [summary_from_row(r, now) for r in rows]

    async def count_by_state(self) -> dict[str, int]:
        """How many actions are in each effective state (expiry applied), for ``/metrics``."""
        sql = (
            "SELECT CASE WHEN state IN ('pending', 'approved') AND expires_at <= ? THEN 'expired' "
            "ELSE state END AS effective, count(*) FROM actions GROUP BY effective"
        )
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(sql, [self._now()])
        return {str(state): int(count) for state, count in rows}

    async def park(self, call: PlannedCall, decision: Decision, requester: Principal) -> ParkedAction:
        """Store ``call`` exactly as evaluated, pending until its approval TTL runs out."""
        if decision.outcome != "needs_approval":
            raise QueueError(f"only needs_approval decisions are parked, not {decision.outcome}")
        if not call.actions:
            raise QueueError("a call without actions cannot be parked")
        needs = requirement(decision)
        created = self._clock()
        now, expires = format_time(created), format_time(created + timedelta(seconds=needs.ttl_seconds))
        call_json = canonical_json(call.model_dump(mode="json"))
        values = {
            "id": call.id,
            "state": ActionState.PENDING.value,
            "tool": call.tool,
            "call_json": self.sealer.seal(call_json, call.id) if self.sealer else call_json,
            "fingerprint": call.fingerprint(),
            "decision_json": canonical_json(decision.model_dump(mode="json")),
            "bundle_revision": decision.bundle_revision,
            "decision_id": decision.decision_id,
            "requester": requester.subject,
            "requester_json": canonical_json(requester.model_dump(mode="json")),
            "target_json": canonical_json(target_summary(call)),
            "min_approvals": needs.min_approvals,
            "created_at": now,
            "updated_at": now,
            "expires_at": expires,
        }
        sql = f"INSERT INTO actions ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"  # noqa: S608
        try:
            async with self.db.write() as conn:
                await conn.execute(sql, list(values.values()))
                parked = await self._load(conn, call.id)
                detail = {"expires_at": expires, "min_approvals": needs.min_approvals}
                detail["approver_groups"] = list(needs.approver_groups)
                await self.audit.append(conn, action_event("parked", parked, detail=detail))
            # The caller may wait for the approval next: hear of it from now on.
            self.db.watch(call.id)
        except DuplicateKey as exc:
            raise QueueError(f"call {call.id} is already parked") from exc
        except DatabaseError as exc:
            raise QueueError(f"the queue database failed: {exc}; nothing was changed") from exc
        self._emit("parked", parked, requester.subject)
        return parked

    async def wait_for_change(self, action_id: str, seconds: float) -> bool:
        """Until the action changes (true: read it again) or ``seconds`` pass. PostgreSQL
        wakes the caller when any replica commits a transition of it (``LISTEN/NOTIFY``);
        SQLite sleeps ``seconds`` (the caller polls)."""
        return await self.db.wait_for_change(action_id, seconds)

    async def record_approval(
        self,
        action: ParkedAction,
        approval: Approval,
        approver: Principal,
        decision: Decision,
        *,
        proof: StoredProof | None = None,
    ) -> ParkedAction:
        """Record ``approval`` (with its ``proof``) and apply policy's re-evaluation
        ``decision``: allow makes the action approved, deny makes it denied, needs_approval
        leaves it pending.

        ``action`` is the action as read when ``decision`` was computed. If its state,
        fingerprint or approvals changed since, nothing is written: ``InvalidTransition``,
        or ``StaleApprovals`` when only the approvals did (judge again and retry). Returns
        the action as the row now holds it.
        """
        expired = False
        with storage_errors():
            async with self.db.write() as conn:
                await conn.lock_row("actions", action.id)
                # Only the columns the guard needs: the payload was parsed when it was read.
                subjects_sql = self.db.dialect.json_list("subject")
                rows = await conn.fetchall(
                    f"SELECT state, expires_at, fingerprint, (SELECT {subjects_sql} "  # noqa: S608 - constants
                    "FROM approvals WHERE approvals.action_id = actions.id) FROM actions WHERE id = ?",
                    [action.id],
                )
                if not rows:
                    raise UnknownAction(f"no parked action has id {action.id!r}")
                raw_state, expires_at, fingerprint, subjects_json = rows[0]
                state = effective_state(raw_state, expires_at, self._now())
                if state is ActionState.EXPIRED and await self._expire_in(
                    conn, action.model_copy(update={"state": state})
                ):
                    expired = True
                else:
                    self._require(
                        action.model_copy(update={"state": state}), {ActionState.PENDING}, "approved"
                    )
                    if fingerprint != action.fingerprint:
                        raise InvalidTransition(f"action {action.id} changed while it was being approved")
                    subjects = set(json.loads(subjects_json))
                    if approval.subject in subjects:
                        raise ApprovalRefused(f"{approval.subject} has already approved action {action.id}")
                    if subjects != {a.subject for a in action.approvals}:
                        raise StaleApprovals(f"action {action.id} was approved by someone else meanwhile")
                    held = proof or StoredProof()
                    await conn.execute(
                        "INSERT INTO approvals (action_id, subject, groups_json, approved_at, reason, "
                        "fingerprint, statement, signature, attestation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            action.id,
                            approval.subject,
                            canonical_json(list(approval.groups)),
                            approval.approved_at,
                            approval.reason,
                            fingerprint,
                            held.statement,
                            held.signature,
                            held.attestation,
                        ],
                    )
                    updated = await self._after_approval(conn, action, approval, approver, decision, held)
        if expired:
            self._emit("expired", action.model_copy(update={"state": ActionState.EXPIRED}), "gateway")
            raise InvalidTransition(f"action {action.id} has expired; nothing was approved")
        name = {ActionState.APPROVED: "approved", ActionState.DENIED: "denied"}.get(updated.state, "approval")
        self._emit(name, updated, approver.subject, approval.reason if name != "denied" else updated.error)
        return updated

    async def _after_approval(
        self,
        conn: Connection,
        action: ParkedAction,
        approval: Approval,
        approver: Principal,
        decision: Decision,
        proof: StoredProof,
    ) -> ParkedAction:
        decision_json = canonical_json(decision.model_dump(mode="json"))
        target = {
            "allow": ActionState.APPROVED,
            "deny": ActionState.DENIED,
            "needs_approval": ActionState.PENDING,
        }[decision.outcome]
        error = None
        if target is ActionState.DENIED:
            error = "policy denied on re-evaluation: " + "; ".join(r.message for r in decision.reasons)
        stamp = await self._transition(
            conn,
            action.id,
            ActionState.PENDING,
            target,
            live=True,
            last_decision_json=decision_json,
            error=error,
            denied_by="policy" if target is ActionState.DENIED else None,
        )
        if stamp is None:
            raise InvalidTransition(f"action {action.id} is no longer pending; nothing was approved")
        detail = {
            "approvals": len(action.approvals) + 1,
            "state": target.value,
            "reason": approval.reason,
            # Digests bind the proofs kept in the approvals table to the chain (`audit verify`).
            "proof": proof_digests(proof.statement, proof.signature, proof.attestation),
        }
        event = action_event(
            "approval",
            action,
            subject=approver.subject,
            transport=approver.transport,
            decision=decision,
            detail=detail,
        )
        await self.audit.append(conn, event)
        if target is ActionState.DENIED:
            await self.audit.append(
                conn,
                action_event("denial", action, subject="policy", transport="internal", decision=decision),
            )
        # What the row now holds, without reading it back.
        return action.model_copy(
            update={
                "state": target,
                "approvals": (*action.approvals, approval),
                "updated_at": stamp,
                "error": error,
                "denied_by": "policy" if target is ActionState.DENIED else None,
            }
        )

    async def stored_approvals(self, action_id: str) -> list[StoredApproval]:
        """Every approval row of the action, with its proofs."""
        return [row for _, row in await self._approval_rows(action_id)]

    async def every_approval(self) -> list[tuple[str, StoredApproval]]:
        """Every approval row of every action, with its action id (``audit verify``)."""
        return await self._approval_rows(None)

    async def _approval_rows(self, action_id: str | None) -> list[tuple[str, StoredApproval]]:
        where, params = ("WHERE action_id = ?", [action_id]) if action_id is not None else ("", [])
        columns = (
            "action_id, subject, groups_json, approved_at, reason, fingerprint, "
            "statement, signature, attestation"
        )
        sql = f"SELECT {columns} FROM approvals {where} ORDER BY action_id, approved_at, subject"  # noqa: S608
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(sql, params)
        try:
            return [
                (
                    str(r[0]),
                    StoredApproval(
                        subject=str(r[1]),
                        groups=tuple(json.loads(r[2])),
                        approved_at=str(r[3]),
                        reason=r[4],
                        fingerprint=str(r[5]),
                        statement=r[6],
                        signature=r[7],
                        attestation=r[8],
                    ),
                )
                for r in rows
            ]
        except (ValueError, TypeError) as exc:
            raise CorruptAction(f"an approval of action {action_id or '?'} is unreadable (edited?)") from exc

    async def deny(self, action_id: str, by: Principal, reason: str) -> ParkedAction:
        """A human refuses a pending action."""
        detail = {"reason": reason}
        error = f"denied by {by.subject}: {reason}"
        return await self._human(
            action_id, by, {ActionState.PENDING}, ActionState.DENIED, "denial", detail, error
        )

    async def cancel(self, action_id: str, by: Principal, reason: str | None = None) -> ParkedAction:
        """Withdraw a pending or approved action before it runs."""
        error = f"cancelled by {by.subject}" + (f": {reason}" if reason else "")
        return await self._human(
            action_id,
            by,
            {ActionState.PENDING, ActionState.APPROVED},
            ActionState.CANCELLED,
            "cancellation",
            {"reason": reason},
            error,
        )

    async def _human(
        self,
        action_id: str,
        by: Principal,
        sources: set[ActionState],
        target: ActionState,
        kind: AuditKind,
        detail: dict[str, Any],
        error: str,
    ) -> ParkedAction:
        expired = False
        with storage_errors():
            async with self.db.write() as conn:
                action = await self._load_locked(conn, action_id)
                if action.state is ActionState.EXPIRED and await self._expire_in(conn, action):
                    expired = True
                else:
                    self._require(action, sources, target.value)
                    denied_by = "approver" if target is ActionState.DENIED else None
                    if not await self._transition(
                        conn, action_id, action.state, target, live=True, error=error, denied_by=denied_by
                    ):
                        raise InvalidTransition(f"action {action_id} changed meanwhile; nothing was done")
                    event = action_event(
                        kind, action, subject=by.subject, transport=by.transport, detail=detail
                    )
                    await self.audit.append(conn, event)
        if expired:
            self._emit("expired", action, "gateway")
            raise InvalidTransition(f"action {action_id} has expired; nothing was done")
        done = await self.get(action_id)
        self._emit(target.value, done, by.subject, detail.get("reason"))
        return done
