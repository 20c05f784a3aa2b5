"""``JournalStore``: the reversal journal, what every executed write changed (``gateway.changes``),
in the gateway's database beside the queue (``journal`` table, both backends).

One row per executed call, keyed by the call's id: the id a parked call had in the queue,
or the id a directly allowed call's audit records carry. ``call_json`` (the call as
judged) and ``changes_json`` (raw before- and after-images: Secret values included) are
sealed with the queue's keys (``gateway.queue.sealing``), bound to the row, so the
database alone does not reveal them and they cannot be swapped between rows; the other
columns hold what views may show (targets, identities, who and when).

A complete rollback marks what it rolled back in the same transaction as its own row
(``rolled_back_by`` is set once: ``WHERE rolled_back_by IS NULL``), with a ``rolled_back``
audit record on the original's id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from gateway.audit import AuditLog, format_time
from gateway.changes import Change, JournalRecord, RolledBack, identity, rollback_link
from gateway.contracts import Decision, PlannedCall, Principal, canonical_json
from gateway.db import Connection, Database
from gateway.errors import CorruptAction, DatabaseError, DuplicateKey, QueueError, SealError, UnknownAction
from gateway.ports import AuditEvent
from gateway.queue._base import storage_errors
from gateway.queue._rows import Clock, system_clock, target_summary
from gateway.queue.sealing import Sealer, unseal

__all__ = ["JournalStore"]

_MIN_PREFIX: Final[int] = 4
_CHANGES: Final[TypeAdapter[tuple[Change, ...]]] = TypeAdapter(tuple[Change, ...])
_COLUMNS: Final[str] = (
    "action_id, tool, backend, requester_json, approver_groups_json, executed_at, complete, "
    "call_json, changes_json, rollback_of, rolled_back_by, rolled_back_subject, rolled_back_at"
)
_VIEW_COLUMNS: Final[str] = (
    "action_id, tool, requester, target_json, summary_json, executed_at, complete, rollback_of, "
    "rolled_back_by, rolled_back_subject, rolled_back_at"
)


class JournalStore:
    """``gateway.ports.Journal`` over the gateway's ``Database``."""

    def __init__(
        self, db: Database, audit: AuditLog, *, sealer: Sealer | None = None, clock: Clock = system_clock
    ) -> None:
        self.db = db
        self._audit = audit
        self._sealer = sealer
        self._clock = clock

    async def record(
        self, call: PlannedCall, changes: Sequence[Change], decision: Decision, *, complete: bool
    ) -> None:
        """Keep what ``call`` changed. When ``call`` is a complete rollback, mark the action
        it rolled back (unless a rollback was recorded for it first)."""
        if not changes or not call.actions:
            return
        requester = call.actions[0].principal
        groups = list(decision.approval.approver_groups) if decision.approval else []
        now = format_time(self._clock())
        rollback_of = rollback_link(call).get("rollback_of")
        values = {
            "action_id": call.id,
            "tool": call.tool,
            "backend": changes[0].backend,
            "requester": requester.subject,
            "requester_json": canonical_json(requester.model_dump(mode="json")),
            "approver_groups_json": canonical_json(groups),
            "target_json": canonical_json(target_summary(call)),
            "summary_json": canonical_json([_summary(c) for c in changes]),
            "executed_at": now,
            "complete": 1 if complete else 0,
            "call_json": self._seal(call.model_dump_json(), call.id, "call"),
            "changes_json": self._seal(_CHANGES.dump_json(tuple(changes)).decode(), call.id, "changes"),
            "rollback_of": rollback_of,
        }
        sql = f"INSERT INTO journal ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"  # noqa: S608
        params = list(values.values())
        marks = rollback_of if complete else None
        try:
            if self.db.blocking_writes and marks is None:
                # One trip to SQLite's thread, like the audit append: the journal row is
                # written on every executed change, so it costs one write, not a trip per
                # statement (BEGIN, INSERT, COMMIT).
                await self.db.write_blocking(lambda conn: conn.execute(sql, params))
                return
            async with self.db.write() as conn:
                await conn.execute(sql, params)
                if marks is not None:
                    await self._mark(conn, marks, call, requester, now)
        except DuplicateKey as exc:
            raise QueueError(f"the changes of action {call.id} are already journaled") from exc
        except DatabaseError as exc:
            raise QueueError(f"the journal could not be written: {exc}; nothing was changed") from exc

    async def _mark(
        self, conn: Connection, original: str, call: PlannedCall, by: Principal, now: str
    ) -> None:
        marked = await conn.execute(
            "UPDATE journal SET rolled_back_by = ?, rolled_back_subject = ?, rolled_back_at = ? "
            "WHERE action_id = ? AND rolled_back_by IS NULL",
            [call.id, by.subject, now, original],
        )
        if marked != 1:
            return
        event = AuditEvent(
            kind="rolled_back",
            action_id=original,
            tool=call.tool,
            subject=by.subject,
            transport=by.transport,
            target=target_summary(call),
            fingerprint=call.fingerprint(),
            detail={"by_action": call.id},
        )
        await self._audit.append(conn, event)

    async def resolve(self, ref: str) -> str:
        """The full id for ``ref``, an id or a unique prefix of at least four characters."""
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(
                    "SELECT action_id FROM journal WHERE action_id >= ? AND action_id < ? LIMIT 2",
                    [ref, ref + "\U0010ffff"],
                )
        ids = [str(r[0]) for r in rows]
        if ref in ids:
            return ref
        if len(ref) >= _MIN_PREFIX and len(ids) == 1:
            return ids[0]
        if len(ref) >= _MIN_PREFIX and len(ids) > 1:
            raise UnknownAction(f"{ref!r} matches more than one executed action: give more of the id")
        raise UnknownAction(f"no executed action has id {ref!r}")

    async def find(self, ref: str) -> JournalRecord:
        return await self.get(await self.resolve(ref))

    async def get(self, action_id: str) -> JournalRecord:
        """The whole record, unsealed. Raises ``UnknownAction``, ``CorruptAction``, ``SealError``."""
        sql = f"SELECT {_COLUMNS} FROM journal WHERE action_id = ?"  # noqa: S608 - constants
        with storage_errors():
            async with self.db.read() as conn:
                row = await conn.fetchone(sql, [action_id])
        if row is None:
            raise UnknownAction(f"no executed action has id {action_id!r}")
        (_, tool, backend, requester, groups, executed, complete, call, changes, of, by, subject, at) = row
        try:
            return JournalRecord(
                action_id=action_id,
                tool=tool,
                backend=backend,
                requester=Principal.model_validate_json(requester),
                approver_groups=tuple(json.loads(groups)),
                executed_at=executed,
                complete=bool(complete),
                call=PlannedCall.model_validate_json(self._open(call, action_id, "call")),
                changes=_CHANGES.validate_json(self._open(changes, action_id, "changes")),
                rollback_of=of,
                rolled_back=RolledBack(by_action=by, subject=subject, at=at) if by else None,
            )
        except (ValidationError, ValueError, TypeError) as exc:
            raise CorruptAction(f"the journal of action {action_id} is unreadable (edited?)") from exc

    async def view(self, action_id: str) -> dict[str, Any] | None:
        """What a view may show of an executed action (``JournalRecord.view``'s shape), from
        the clear columns only; ``None`` when the action changed nothing."""
        sql = f"SELECT {_VIEW_COLUMNS} FROM journal WHERE action_id = ?"  # noqa: S608 - constants
        with storage_errors():
            async with self.db.read() as conn:
                row = await conn.fetchone(sql, [action_id])
        if row is None:
            return None
        (_, tool, requester, target, summary, executed, complete, of, by, subject, at) = row
        rolled = RolledBack(by_action=by, subject=subject, at=at).model_dump() if by else None
        return {
            "action_id": action_id,
            "state": "succeeded" if complete else "failed",
            "tool": tool,
            "target": json.loads(target),
            "requester": requester,
            "executed_at": executed,
            "complete": bool(complete),
            "rollback_of": of,
            "changes": json.loads(summary),
            "rolled_back": rolled,
        }

    def _seal(self, text: str, action_id: str, part: str) -> str:
        return self._sealer.seal(text, f"journal:{part}:{action_id}") if self._sealer else text

    def _open(self, value: str, action_id: str, part: str) -> str:
        try:
            return unseal(value, f"journal:{part}:{action_id}", self._sealer)
        except SealError as exc:
            raise SealError(
                f"the journal of action {action_id} cannot be opened (a key this process does not "
                "hold, or altered): it cannot be rolled back"
            ) from exc


def _summary(change: Change) -> dict[str, Any]:
    """One change as views show it: what, where, and the identity the API returned."""
    return {
        "change": change.kind,
        "target": change.target.model_dump(exclude_defaults=True),
        **identity(change.after or change.before),
    }
