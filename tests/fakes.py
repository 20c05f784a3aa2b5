"""In-memory stand-ins for the queue, the audit log and the reversal journal, for unit tests only (integration
tests use the real store, on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from gateway.changes import Change, JournalRecord, RolledBack, rollback_link
from gateway.contracts import Decision, PlannedCall, Principal, utc_now
from gateway.errors import UnknownAction
from gateway.ports import ActionState, AuditEvent, ParkedAction


class InMemoryAudit:
    """``gateway.ports.AuditSink`` keeping events in a list."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class InMemoryQueue:
    """``gateway.ports.ApprovalQueue`` over a dict; ``update`` plays the approver/executor."""

    def __init__(self) -> None:
        self.actions: dict[str, ParkedAction] = {}

    async def park(self, call: PlannedCall, decision: Decision, requester: Principal) -> ParkedAction:
        ttl = decision.approval.ttl_seconds if decision.approval else 900
        now = utc_now()
        expires = (datetime.now(UTC) + timedelta(seconds=ttl)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parked = ParkedAction(
            id=call.id,
            state=ActionState.PENDING,
            call=call,
            decision=decision,
            fingerprint=call.fingerprint(),
            requester=requester,
            created_at=now,
            updated_at=now,
            expires_at=expires,
        )
        self.actions[call.id] = parked
        return parked

    async def get(self, action_id: str) -> ParkedAction:
        try:
            return self.actions[action_id]
        except KeyError:
            raise UnknownAction(f"no parked action has id {action_id!r}") from None

    async def wait_for_change(self, action_id: str, seconds: float) -> bool:
        await asyncio.sleep(seconds)  # polls, as the SQLite store does
        return False

    def update(self, action_id: str, **changes: object) -> None:
        self.actions[action_id] = self.actions[action_id].model_copy(update=changes)


class FakeTime:
    """A clock that moves only when someone sleeps on it: ``clock`` and ``sleep`` go where a
    rate limiter or a client takes them, ``slept`` lists the waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


class InMemoryJournal:
    """``gateway.ports.Journal`` over a dict (full ids only, no sealing)."""

    def __init__(self) -> None:
        self.records: dict[str, JournalRecord] = {}

    async def record(
        self, call: PlannedCall, changes: Sequence[Change], decision: Decision, *, complete: bool
    ) -> None:
        if not changes:
            return
        groups = tuple(decision.approval.approver_groups) if decision.approval else ()
        rollback_of = rollback_link(call).get("rollback_of")
        self.records[call.id] = JournalRecord(
            action_id=call.id,
            tool=call.tool,
            backend=changes[0].backend,
            requester=call.actions[0].principal,
            approver_groups=groups,
            executed_at=utc_now(),
            complete=complete,
            call=call,
            changes=tuple(changes),
            rollback_of=rollback_of,
        )
        if rollback_of in self.records and complete and self.records[rollback_of].rolled_back is None:
            done = RolledBack(by_action=call.id, subject=call.actions[0].principal.subject, at=utc_now())
            self.records[rollback_of] = self.records[rollback_of].model_copy(update={"rolled_back": done})

    async def find(self, ref: str) -> JournalRecord:
        try:
            return self.records[ref]
        except KeyError:
            raise UnknownAction(f"no executed action has id {ref!r}") from None
