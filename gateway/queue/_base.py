"""The queue store's foundation (private): loading rows, the one guarded transition
statement, expiry on read. ``QueueStore`` builds every public operation on it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from gateway.audit import AuditLog, format_time
from gateway.db import Connection, Database
from gateway.errors import CorruptAction, DatabaseError, InvalidTransition, QueueError, UnknownAction
from gateway.ports import ActionState, ParkedAction
from gateway.queue._rows import (
    Clock,
    action_columns,
    action_event,
    parked_from_row,
    process_owner,
    system_clock,
)
from gateway.queue.events import Listener, event_of
from gateway.queue.sealing import Sealer, unseal

__all__ = ["HEARTBEAT_SECONDS", "LEASE_SECONDS", "StoreBase", "storage_errors"]

_log = logging.getLogger(__name__)

LEASE_SECONDS: Final[float] = 60.0
"""How long an execution claimed by another instance stands without a heartbeat."""
HEARTBEAT_SECONDS: Final[float] = 10.0


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Database failures as ``QueueError``: the transaction was rolled back."""
    try:
        yield
    except DatabaseError as exc:
        raise QueueError(f"the queue database failed: {exc}; nothing was changed") from exc


class StoreBase:
    """State shared by the store's parts: the database, the audit log, the clock and
    this process's identity as an executor (``instance``: the replica's name, default the
    host name) with the lease its executions hold."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        *,
        clock: Clock = system_clock,
        sealer: Sealer | None = None,
        instance: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.audit = audit
        self._clock = clock
        self._instance = instance
        self._owner = process_owner(instance)
        self.lease_seconds = lease_seconds
        self._action_columns = action_columns(db.dialect)
        # Told about every transition after it commits (webhooks); must not block or raise.
        self.listeners: list[Listener] = []

    def _emit(self, event: str, action: ParkedAction, actor: str, reason: str | None = None) -> None:
        if not self.listeners:
            return
        happened = event_of(event, action, actor=actor, time=self._now(), reason=reason)
        for listener in list(self.listeners):
            try:
                listener(happened)
            except Exception:  # noqa: BLE001 - a listener's bug must not undo a committed transition
                _log.exception("queue listener failed on %s of %s", event, action.id)

    def _now(self) -> str:
        return format_time(self._clock())

    def _open(self, call_json: str, action_id: str) -> str:
        return unseal(call_json, action_id, self.sealer)

    def now(self) -> datetime:
        """The store's clock: the time its expiries and transitions are judged at."""
        return self._clock()

    async def get(self, action_id: str) -> ParkedAction:
        with storage_errors():
            async with self.db.read() as conn:
                return await self._load(conn, action_id)

    async def _load(self, conn: Connection, action_id: str) -> ParkedAction:
        sql = f"SELECT {self._action_columns} FROM actions WHERE id = ?"  # noqa: S608 - constants
        rows = await conn.fetchall(sql, [action_id])
        if not rows:
            raise UnknownAction(f"no parked action has id {action_id!r}")
        try:
            return parked_from_row(rows[0], self._now(), self._open)
        except ValueError as exc:  # pydantic's ValidationError and json's JSONDecodeError
            raise CorruptAction(f"the stored record of action {action_id} is unreadable (edited?)") from exc

    async def _load_locked(self, conn: Connection, action_id: str) -> ParkedAction:
        """Inside a write transaction: the row, locked until the transaction ends, so what
        the caller decides from it still holds when it writes."""
        await conn.lock_row("actions", action_id)
        return await self._load(conn, action_id)

    async def integrity_problem(self, action: ParkedAction) -> str | None:
        """Why ``action`` must not run, or ``None``: the stored call must still hash to the
        fingerprint it was parked with, and every approval must have been given to it."""
        if action.call.fingerprint() != action.fingerprint:
            return "the stored call no longer matches the fingerprint it was approved with"
        with storage_errors():
            async with self.db.read() as conn:
                rows = await conn.fetchall(
                    "SELECT DISTINCT fingerprint FROM approvals WHERE action_id = ?", [action.id]
                )
        bound = {str(r[0]) for r in rows}
        if not bound:
            return "the action has no recorded approval"
        if bound != {action.fingerprint}:
            return "an approval was given to a different version of the call"
        return None

    # -- transitions ---------------------------------------------------------------

    async def _expire_in(self, conn: Connection, action: ParkedAction) -> bool:
        """Inside a write transaction: persist an effective expiry, with its audit row."""
        if action.state is not ActionState.EXPIRED:
            return False
        changed = await conn.execute(
            "UPDATE actions SET state = 'expired', updated_at = ?, error = ? "
            "WHERE id = ? AND state IN ('pending', 'approved') AND expires_at <= ?",
            [self._now(), f"expired at {action.expires_at} before it ran", action.id, self._now()],
        )
        if changed != 1:
            return False
        detail = {"expires_at": action.expires_at}
        await self.audit.append(
            conn, action_event("expiry", action, subject="gateway", transport="internal", detail=detail)
        )
        return True

    async def _transition(
        self,
        conn: Connection,
        action_id: str,
        source: ActionState,
        target: ActionState,
        *,
        live: bool = False,
        owner: str | None = None,
        stale_before: str | None = None,
        **updates: Any,
    ) -> str | None:
        """The one guarded statement behind every transition. Returns the ``updated_at`` it
        wrote if this call made the transition, ``None`` if the row was not in ``source``
        (or, with ``owner``, claimed by someone else; with ``stale_before``, its lease was
        renewed since)."""
        now = self._now()
        sets = "".join(f", {column} = ?" for column in updates)
        sql = f"UPDATE actions SET state = ?, updated_at = ?{sets} WHERE id = ? AND state = ?"  # noqa: S608
        params: list[Any] = [target.value, now, *updates.values(), action_id, source.value]
        if live:
            sql += " AND expires_at > ?"
            params.append(now)
        if owner is not None:
            sql += " AND claimed_by = ?"
            params.append(owner)
        if stale_before is not None:
            sql += " AND (heartbeat_at IS NULL OR heartbeat_at <= ?)"
            params.append(stale_before)
        if await conn.execute(sql, params) != 1:
            return None
        return now

    @staticmethod
    def _require(action: ParkedAction, sources: set[ActionState], verb: str) -> None:
        if action.state not in sources:
            allowed = " or ".join(sorted(s.value for s in sources))
            raise InvalidTransition(
                f"action {action.id} is {action.state.value}; only {allowed} actions can be {verb}"
            )
