"""Who else hears of a policy decision: observers of every answer OPA gave, off the request path.

``PolicyClient`` tells its observers (``DecisionObserver``) of every decision OPA produced,
one proposed action at a time, as it hands it to the caller: the recorder keeps the input
for ``gateway policy replay`` (``gateway.recording``), the shadow evaluator asks a
candidate bundle the same question (``gateway.shadow``). A decision the gateway made up
because OPA could not answer (the fail-closed deny) is not policy's and is not observed.

Observers are told synchronously and must only queue: they never block, never raise into
the decision path and never change what it returns.

The call a decision belongs to is ambient context rather than an argument, because the
policy client judges proposed actions and does not know about calls: whoever asks policy
on behalf of a call says so with ``deciding(call_id, source)`` around the request
(``gateway.pipeline`` for calls and checks, ``gateway.queue.reevaluation`` for
re-evaluations with approvals). Without it, observers see ``call_id=None`` and a source
guessed from the action (``reevaluation`` when it carries approvals).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.contracts import Decision, ProposedAction

__all__ = ["DecisionContext", "DecisionObserver", "DecisionSource", "context_for", "deciding"]

DecisionSource = Literal["call", "check", "reevaluation"]
"""``call``: a tool call on the decision path; ``check``: ``gateway_check`` (nothing runs);
``reevaluation``: a parked call judged again with its approvals (approve flow, executor)."""


@dataclass(frozen=True)
class DecisionContext:
    """The call a decision was made for, and why policy was asked."""

    call_id: str | None
    source: DecisionSource


class DecisionObserver(Protocol):
    """Told of each decision OPA produced about one proposed action."""

    def observe(self, action: ProposedAction, decision: Decision, context: DecisionContext) -> None:
        """Queue what is needed and return at once; never raise."""
        ...


_current: contextvars.ContextVar[DecisionContext | None] = contextvars.ContextVar(
    "gateway_decision_context", default=None
)


@contextmanager
def deciding(call_id: str, source: DecisionSource) -> Iterator[None]:
    """Decisions asked for inside the block belong to call ``call_id``."""
    token = _current.set(DecisionContext(call_id=call_id, source=source))
    try:
        yield
    finally:
        _current.reset(token)


def context_for(action: ProposedAction) -> DecisionContext:
    """The context ``deciding`` set, or one guessed from the action."""
    current = _current.get()
    if current is not None:
        return current
    return DecisionContext(call_id=None, source="reevaluation" if action.approvals else "call")
