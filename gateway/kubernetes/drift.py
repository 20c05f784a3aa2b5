"""Did an object change since the gateway wrote it? What a rollback checks before it undoes.

The journal keeps the object as the API returned it after the gateway's write. A rollback
compares the live object with it: the same uid, and the same content once status, the
server's bookkeeping (versions, generation, managed fields) and the annotations
controllers maintain are left out, so status churn is not drift, and neither is a change
that was itself undone since (the generation moved, the content is back: rolling back
several actions, last first). What changed is named as the write guards name it
(``guards.JudgedState``: generation, labels, annotations) and listed by field, values
redacted.
"""

from __future__ import annotations

from typing import Any

from gateway.changes import changed_paths
from gateway.kubernetes.fieldsets import recreate_manifest
from gateway.kubernetes.guards import JudgedState
from gateway.kubernetes.images import policy_image

__all__ = ["drift"]

JSON = dict[str, Any]


def drift(after: JSON | None, live: JSON) -> list[str]:
    """What differs in ``live`` from ``after`` (the object right after the gateway's write):
    empty when nothing did; else a sentence, then one line per changed field."""
    if after is None:
        return ["how the write left it was not recorded, so later changes cannot be ruled out"]
    state = JudgedState.of(after)
    old, new = _content(after), _content(live)
    if old == new and (live.get("metadata") or {}).get("uid") == state.uid:
        return []
    return [state.drift(live) or "its content changed", *changed_paths(old, new)]


def _content(obj: JSON) -> JSON:
    """What an object says: as it would be re-created (no status, identity, versions or
    controller annotations; ``fieldsets.recreate_manifest``), Secret values digested."""
    return recreate_manifest(policy_image(obj) or {})
