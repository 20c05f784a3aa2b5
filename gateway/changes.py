"""What an executed write did, kept so it can be undone: the reversal journal's contract.

A backend's ``execute`` reports every effect it had on ``ExecutionContext.changes``: one
``Change`` per object written, with the object as it was just before the write (read by
the write's own guard, so it is what the judged before-image still was), what was sent,
and the object as the API returned it after. ``gateway.pipeline`` hands the changes to the
journal (``gateway.ports.Journal``), which keeps them with the action id, sealed like
parked calls: ``before`` and ``after`` are raw objects and may hold Secret values.

Nothing here is ever shown as it is: views use ``identity`` (uid, versions) and
``changed_paths`` (which fields differ, values redacted) only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Backend, JSONObject, PlannedCall, Principal, Target
from gateway.redaction import REDACTED, redact

__all__ = [
    "IRREVERSIBLE",
    "Change",
    "ChangeKind",
    "ChangeLog",
    "JournalRecord",
    "RolledBack",
    "changed_paths",
    "identity",
    "rollback_link",
]

ChangeKind = Literal[
    "created",  # a Kubernetes object that did not exist (apply)
    "updated",  # a Kubernetes object changed by server-side apply
    "deleted",  # a Kubernetes object deleted
    "scaled",  # replicas set through /scale
    "restarted",  # the pod template's restartedAt annotation set
    "resources_set",  # one container's requests and limits patched
    "palette_created",  # a Palette cluster created
    "palette_profiles",  # a Palette cluster's profiles patched
    "palette_deleted",  # a Palette cluster deleted
]

IRREVERSIBLE: Final[dict[str, str]] = {
    "palette_deleted": (
        "a deleted Palette cluster cannot be brought back: its machines and cloud resources are "
        "released with it; create a new cluster from its profiles instead"
    ),
}
"""Changes no rollback can undo, with the reason a refusal gives."""


class Change(BaseModel):
    """One object a write changed. ``index`` is the proposed action (in the call) that made
    it; ``target`` is that action's judged target (its cluster is where the undo runs)."""

    model_config = ConfigDict(frozen=True)

    index: int
    kind: ChangeKind
    backend: Backend
    target: Target
    before: JSONObject | None = None
    after: JSONObject | None = None
    written: Any = None
    detail: JSONObject = Field(default_factory=dict)


class ChangeLog:
    """Where ``execute`` reports its changes, in the order they happened."""

    def __init__(self) -> None:
        self._changes: list[Change] = []

    def add(self, change: Change) -> None:
        self._changes.append(change)

    def __iter__(self) -> Iterator[Change]:
        return iter(self._changes)

    def __len__(self) -> int:
        return len(self._changes)

    def __bool__(self) -> bool:
        return bool(self._changes)


class RolledBack(BaseModel):
    """Who undid an action, when, and with which action."""

    model_config = ConfigDict(frozen=True)

    by_action: str
    subject: str
    at: str


class JournalRecord(BaseModel):
    """One executed call as the journal keeps it. ``call`` is the call as judged (policy
    images only); ``changes`` hold raw images and never leave the gateway; ``approver_groups``
    are those of the decision it ran under (who may roll it back besides its requester)."""

    model_config = ConfigDict(frozen=True)

    action_id: str
    tool: str
    backend: Backend
    requester: Principal
    approver_groups: tuple[str, ...] = ()
    executed_at: str
    complete: bool = True
    call: PlannedCall
    changes: tuple[Change, ...]
    rollback_of: str | None = None
    rolled_back: RolledBack | None = None


def identity(obj: JSONObject | None) -> JSONObject:
    """The object's identity and versions (what the API returned), never its body."""
    meta = (obj or {}).get("metadata") or {}
    out = {
        key: meta.get(key) for key in ("uid", "resourceVersion", "generation") if meta.get(key) is not None
    }
    modified = meta.get("lastModifiedTimestamp")
    if modified is not None:
        out["lastModifiedTimestamp"] = modified
    return out


def rollback_link(call: PlannedCall) -> JSONObject:
    """``{"rollback_of": id}`` for a rollback call, for the audit records about it."""
    first = call.actions[0] if call.actions else None
    if first is not None and first.operation == "rollback" and isinstance(first.args.get("rollback_of"), str):
        return {"rollback_of": first.args["rollback_of"]}
    return {}


_MAX_SHOWN: Final[int] = 200


def changed_paths(before: Any, after: Any, *, limit: int = 20) -> list[str]:
    """``path: before -> after`` for every leaf that differs, values shown redacted (Secret
    data, credentials) and shortened. List items with a ``name`` are matched by name.
    Differences are found on the values given; only what is shown is redacted, so a
    changed secret is reported as changed without its value."""
    found: list[str] = []
    _diff((before, redact(before)), (after, redact(after)), "", found, limit + 1)
    if len(found) > limit:
        found = [*found[:limit], "… and more"]
    return found


def _diff(before: tuple[Any, Any], after: tuple[Any, Any], path: str, found: list[str], limit: int) -> None:
    """``before`` and ``after`` are (value, its redacted copy): redaction keeps keys and
    list lengths, so the two walk together."""
    (old, old_shown), (new, new_shown) = before, after
    if len(found) >= limit or old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            _diff(_at(before, key), _at(after, key), f"{path}.{key}" if path else str(key), found, limit)
        return
    if isinstance(old, list) and isinstance(new, list) and _named(old) and _named(new):
        olds, news = _by_name(before), _by_name(after)
        for name in sorted(olds.keys() | news.keys()):
            absent = (_ABSENT, _ABSENT)
            _diff(olds.get(name, absent), news.get(name, absent), f"{path}[{name}]", found, limit)
        return
    found.append(f"{path or '.'}: {_shown(old_shown)} -> {_shown(new_shown)}")


def _at(pair: tuple[Any, Any], key: Any) -> tuple[Any, Any]:
    value, shown = pair
    if key not in value:
        return _ABSENT, _ABSENT
    return value[key], shown.get(key, _ABSENT) if isinstance(shown, dict) else _ABSENT


def _by_name(pair: tuple[Any, Any]) -> dict[str, tuple[Any, Any]]:
    value, shown = pair
    shown_items = shown if isinstance(shown, list) and len(shown) == len(value) else [_ABSENT] * len(value)
    return {item["name"]: (item, s) for item, s in zip(value, shown_items, strict=True)}


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT: Final = _Absent()


def _named(items: list[Any]) -> bool:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    return (
        len(names) == len(items) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
    )


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if value == REDACTED:
        return "(a secret value)"
    text = repr(value) if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
