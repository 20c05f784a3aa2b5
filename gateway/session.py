"""Untrusted reads per MCP session: what a session read that the cluster's users control.

Pod logs, events and the like can carry instructions planted for the model. Policy names
such content in a read's decision (``obligations.untrusted``, sources in bundle data);
this module remembers, per MCP session, each such read that ran, and attaches them to the
proposed actions of the session's later calls as ``input.session.untrusted_reads``, where
a rule (``untrusted_content``) makes changes need approval.

What a session is, from the gateway's side only (nothing here comes from the client):

- streamable HTTP with a session: the session the transport created (its id as the SDK's
  connection holds it, after the transport accepted the request);
- HTTP without one (stateless, or the 2026 protocol, where every request is its own
  connection): the authenticated principal, a wider scope, so marks are never lost;
- stdio and in-process: the whole process, one client.

Memory is bounded: at most ``max_sessions`` sessions (the least recently used go first)
and ``max_reads`` reads each (the oldest go first; the count of all is kept).

``SessionLedger.bound`` is entered by the MCP front end around each request; the pipeline
calls ``attach`` when it plans a call and ``remember`` when a call has run. Outside a
bound request (the queue's executor, the CLI) both do nothing.
"""

from __future__ import annotations

import contextvars
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway.contracts import PlannedCall, Principal, SessionFacts, Target, UntrustedRead, utc_now
from gateway.outcome import CallOutcome

__all__ = ["SessionLedger", "SessionRecord", "attach", "remember", "session_key", "transport_session_id"]

MAX_SESSIONS = 4096
MAX_READS = 16

SessionKey = tuple[str, ...]


@dataclass
class SessionRecord:
    """One session's untrusted reads: the latest ``reads.maxlen``, and how many there were."""

    id: str
    reads: deque[UntrustedRead]
    total: int = 0

    def facts(self) -> SessionFacts | None:
        if not self.reads:
            return None
        return SessionFacts(id=self.id, untrusted_reads=tuple(self.reads))


@dataclass
class SessionLedger:
    """Every live session's record, least recently used first."""

    max_sessions: int = MAX_SESSIONS
    max_reads: int = MAX_READS
    _records: OrderedDict[SessionKey, SessionRecord] = field(default_factory=OrderedDict)

    def record(self, key: SessionKey) -> SessionRecord:
        """The session's record, made on first use; the least recently used one beyond
        ``max_sessions`` is forgotten."""
        found = self._records.get(key)
        if found is None:
            found = SessionRecord(id=str(uuid.uuid4()), reads=deque(maxlen=self.max_reads))
            self._records[key] = found
            while len(self._records) > self.max_sessions:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(key)
        return found

    def __len__(self) -> int:
        return len(self._records)

    @contextmanager
    def bound(self, request_context: Any, principal: Principal) -> Iterator[SessionRecord]:
        """Within the block, ``attach`` and ``remember`` work on this request's session."""
        record = self.record(session_key(request_context, principal))
        token = _current.set(record)
        try:
            yield record
        finally:
            _current.reset(token)


_current: contextvars.ContextVar[SessionRecord] = contextvars.ContextVar("gateway_session")


def session_key(request_context: Any, principal: Principal) -> SessionKey:
    """Which session a request belongs to (see the module docstring).

    Without a transport session the principal is the scope, which only widens what a
    mark covers.
    """
    session_id = transport_session_id(request_context)
    if session_id is not None:
        return ("mcp-session", session_id)
    if getattr(request_context, "request", None) is not None:
        return ("principal", principal.transport, principal.subject, str(principal.authenticated))
    return ("process",)


def transport_session_id(request_context: Any) -> str | None:
    """The id the streamable HTTP transport gave the request's session, or None (stdio,
    in-process, stateless HTTP). ``request_context`` is the SDK's ``ServerRequestContext``;
    its per-request ``session`` holds the transport's connection, which the SDK does not
    expose publicly, so it is read defensively."""
    connection = getattr(getattr(request_context, "session", None), "_connection", None)
    session_id = getattr(connection, "session_id", None)
    return session_id if isinstance(session_id, str) and session_id else None


def attach(planned: PlannedCall) -> PlannedCall:
    """The call with its session's untrusted reads on every action, if the session has any."""
    record = _current.get(None)
    facts = record.facts() if record is not None else None
    if facts is None:
        return planned
    actions = tuple(action.model_copy(update={"session": facts}) for action in planned.actions)
    return planned.model_copy(update={"actions": actions})


def remember(planned: PlannedCall, outcome: CallOutcome) -> CallOutcome:
    """Mark the session with a call that ran and returned untrusted content; the outcome
    passes through unchanged."""
    record = _current.get(None)
    decision = outcome.decision
    if record is None or outcome.status != "executed" or decision is None:
        return outcome
    contents = decision.obligations.untrusted
    if not contents:
        return outcome
    at = utc_now()
    content = ", ".join(contents)
    for action in planned.actions:
        target = Target(
            cluster=action.target.cluster,
            namespace=action.target.namespace,
            kind=action.target.kind,
            name=action.target.name,
        )
        record.reads.append(UntrustedRead(tool=planned.tool, content=content, target=target, at=at))
        record.total += 1
    return outcome
