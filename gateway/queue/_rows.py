"""Row mapping and small helpers shared by the queue's modules (private)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python

from gateway.changes import rollback_link
from gateway.contracts import Approval, ApprovalRequirement, Decision, PlannedCall, canonical_json
from gateway.db import Dialect
from gateway.ports import ActionState, AuditEvent, AuditKind, ParkedAction

__all__ = [
    "SUMMARY_COLUMNS",
    "ActionSummary",
    "Clock",
    "action_columns",
    "action_event",
    "effective_state",
    "encode_result",
    "owner_alive",
    "parked_from_row",
    "process_owner",
    "requirement",
    "summary_from_row",
    "system_clock",
    "target_summary",
]

Clock = Callable[[], datetime]


def action_columns(dialect: Dialect) -> str:
    """What ``parked_from_row`` reads: the action's columns and, in the same statement (one
    round trip, one consistent snapshot), its approvals as a JSON array."""
    approval = dialect.json_tuple("subject", dialect.as_json("groups_json"), "approved_at", "reason")
    approvals = f"SELECT {dialect.json_list(approval)} FROM approvals WHERE approvals.action_id = actions.id"  # noqa: S608 - constants
    return (
        "id, state, call_json, decision_json, fingerprint, requester_json, created_at, updated_at, "
        f"expires_at, result_json, error, denied_by, ({approvals})"
    )


SUMMARY_COLUMNS: Final[str] = (
    "id, state, tool, requester, target_json, min_approvals, created_at, expires_at, error, "
    "(SELECT count(*) FROM approvals WHERE approvals.action_id = actions.id)"
)
_LIVE: Final[frozenset[str]] = frozenset({ActionState.PENDING, ActionState.APPROVED})
_MAX_RESULT_BYTES: Final[int] = 4 * 1024 * 1024


def system_clock() -> datetime:
    return datetime.now(UTC)


class ActionSummary(BaseModel):
    """One line of ``queue list``: enough to choose an action, without its payload."""

    model_config = ConfigDict(frozen=True)

    id: str
    state: ActionState
    tool: str
    requester: str
    target: dict[str, Any]
    approvals: int
    min_approvals: int
    created_at: str
    expires_at: str
    error: str | None = None


def effective_state(state: str, expires_at: str, now: str) -> ActionState:
    """A live row past its expiry reads as expired, whether or not a sweep wrote it yet."""
    if state in _LIVE and expires_at <= now:
        return ActionState.EXPIRED
    return ActionState(state)


def requirement(decision: Decision) -> ApprovalRequirement:
    """The approval block; a ``needs_approval`` decision without one gets the strict defaults."""
    return decision.approval or ApprovalRequirement()


def target_summary(call: PlannedCall) -> dict[str, Any]:
    """What the call touches, for lists and the audit log: the first action's target and,
    for multi-document applies, how many actions there are."""
    target: dict[str, Any] = call.actions[0].target.model_dump(exclude_defaults=True) if call.actions else {}
    if len(call.actions) > 1:
        target["actions"] = len(call.actions)
    return target


def encode_result(result: Any) -> str:
    """The (already redacted) result as JSON text, replaced by a note when it is huge.

    Plain compact JSON, not ``canonical_json``: a result is never hashed, and a number
    RFC 8785 refuses (an integer beyond 2**53) must not lose the result of a call that ran.
    """
    text = json.dumps(to_jsonable_python(result, fallback=str), separators=(",", ":"), ensure_ascii=False)
    if len(text.encode("utf-8")) > _MAX_RESULT_BYTES:
        return canonical_json({"truncated": True, "bytes": len(text.encode("utf-8"))})
    return text


def _approvals(text: str | None) -> tuple[Approval, ...]:
    items = [
        Approval(subject=subject, groups=tuple(groups), approved_at=approved_at, reason=reason)
        for subject, groups, approved_at, reason in json.loads(text or "[]")
    ]
    return tuple(sorted(items, key=lambda a: (a.approved_at, a.subject)))


def parked_from_row(row: Any, now: str, opened: Callable[[str, str], str] | None = None) -> ParkedAction:
    """The row as a ``ParkedAction``; ``opened(call_json, action_id)`` unseals the call."""
    (
        action_id,
        state,
        call_json,
        decision_json,
        fp,
        requester_json,
        created,
        updated,
        expires,
        result,
        error,
        denied_by,
        approvals,
    ) = row
    return ParkedAction(
        id=action_id,
        state=effective_state(state, expires, now),
        call=PlannedCall.model_validate_json(opened(call_json, action_id) if opened else call_json),
        decision=Decision.model_validate_json(decision_json),
        fingerprint=fp,
        requester=json.loads(requester_json),
        approvals=_approvals(approvals),
        created_at=created,
        updated_at=updated,
        expires_at=expires,
        result=json.loads(result) if result is not None else None,
        error=error,
        denied_by=denied_by,
    )


def summary_from_row(row: Any, now: str) -> ActionSummary:
    (action_id, state, tool, requester, target_json, min_approvals, created, expires, error, count) = row
    return ActionSummary(
        id=action_id,
        state=effective_state(state, expires, now),
        tool=tool,
        requester=requester,
        target=json.loads(target_json),
        approvals=count,
        min_approvals=min_approvals,
        created_at=created,
        expires_at=expires,
        error=error,
    )


def action_event(
    kind: AuditKind,
    action: ParkedAction,
    *,
    subject: str | None = None,
    transport: str | None = None,
    decision: Decision | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit event about a parked action, attributed to ``subject`` (default: the requester)."""
    judged = decision or action.decision
    return AuditEvent(
        kind=kind,
        action_id=action.id,
        tool=action.call.tool,
        subject=subject or action.requester.subject,
        transport=transport or action.requester.transport,
        target=target_summary(action.call),
        outcome=judged.outcome,
        reasons=[r.model_dump() for r in judged.reasons],
        bundle_revision=judged.bundle_revision,
        decision_id=judged.decision_id,
        fingerprint=action.fingerprint,
        detail={**rollback_link(action.call), **(detail or {})},
    )


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a live
    process from a later one that reused its pid; ``None`` if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in {"Z", "X"} else fields[19]


def _pid_namespace() -> int | None:
    """The inode of this process's pid namespace: two processes whose pids can be compared
    share it (containers with the same host name and their own namespaces do not)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def process_owner(instance: str | None = None) -> str:
    """Who claims an execution, as JSON: the instance (``GATEWAY_INSTANCE``, default the host
    name: a pod's name under Kubernetes), pid, the pid's start time and its pid namespace."""
    pid = os.getpid()
    return canonical_json(
        {
            "host": instance or socket.gethostname(),
            "pid": pid,
            "start": _start_ticks(pid),
            "pidns": _pid_namespace(),
        }
    )


def owner_alive(owner: str | None, instance: str | None = None) -> bool | None:
    """Whether the process that claimed a row still runs: ``None`` when this process cannot
    tell (the claim names another instance, e.g. another replica or container, or a pid
    namespace other than ours); then only its lease says."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        data = json.loads(owner or "")
        if data["host"] != (instance or socket.gethostname()):
            return None
        if data.get("pidns") is not None and data["pidns"] != _pid_namespace():
            return None
        pid = int(data["pid"])
        if not Path("/proc").is_dir():  # not Linux: fall back to a signal probe
            return _signal_probe(pid)
        return _start_ticks(pid) is not None and _start_ticks(pid) == data["start"]
    return None


def _signal_probe(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
