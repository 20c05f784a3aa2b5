"""What a human reviewing a parked action sees: the call with secret values redacted, and
for writes a unified diff from the live object (``current``) to what would be written
(``object``), both as YAML.

The queue stores the exact call so it can run it; only this view is redacted. Manifest
text in the arguments (``k8s_apply``) is parsed and shown as redacted YAML documents.
"""

from __future__ import annotations

import difflib
from typing import Any, Final

import yaml

from gateway.contracts import PlannedCall, ProposedAction
from gateway.errors import UnknownAction
from gateway.ports import ParkedAction
from gateway.queue._rows import target_summary
from gateway.queue.store import QueueStore
from gateway.redaction import redact

__all__ = ["action_view", "change_diff", "describe_target", "redacted_call", "show_action"]

_NOISE: Final[tuple[str, ...]] = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
)


def _redacted_text(text: str) -> Any:
    """Multi-line text that parses as YAML documents (a manifest) is shown parsed and
    redacted; anything else goes through the text patterns only."""
    if "\n" in text:
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            documents = []
        if documents and all(isinstance(d, dict) for d in documents):
            return redact(documents)
    return redact(text)


def redacted_call(call: PlannedCall) -> dict[str, Any]:
    """The call's arguments and actions as a reviewer may see them."""
    args = {k: _redacted_text(v) if isinstance(v, str) else redact(v) for k, v in call.call_args.items()}
    return {
        "id": call.id,
        "tool": call.tool,
        "call_args": args,
        "actions": [redact(a.model_dump(mode="json", exclude={"approvals"})) for a in call.actions],
    }


def _without_noise(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    cleaned = {k: v for k, v in obj.items() if k != "status"}
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        cleaned["metadata"] = {k: v for k, v in metadata.items() if k not in _NOISE}
    result: dict[str, Any] = redact(cleaned)
    return result


def _yaml_lines(obj: dict[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def change_diff(action: ProposedAction) -> str | None:
    """Unified diff ``current`` → ``object`` as YAML, or ``None`` for reads."""
    if action.effect == "read":
        return None
    before = _yaml_lines(_without_noise(action.current))
    after = [] if action.effect == "delete" else _yaml_lines(_without_noise(action.object))
    label = describe_target(action.target.model_dump(exclude_defaults=True))
    lines = difflib.unified_diff(before, after, fromfile=f"live: {label}", tofile=f"after {action.operation}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines) or "(no change)\n"


def describe_target(target: dict[str, Any]) -> str:
    """``cluster/namespace Kind name [environment]``, leaving out what is not set."""
    where = "/".join(str(target[k]) for k in ("cluster", "namespace") if target.get(k))
    what = " ".join(str(target[k]) for k in ("kind", "name") if target.get(k))
    text = " ".join(p for p in (where, what) if p) or "-"
    if target.get("label_selector"):
        text += f" -l {target['label_selector']}"
    if target.get("environment"):
        text += f" [{target['environment']}]"
    if target.get("actions"):
        text += f" (+{int(target['actions']) - 1} more)"
    return text


def action_view(action: ParkedAction) -> dict[str, Any]:
    """Everything ``queue show`` prints, as JSON-ready data."""
    needs = action.decision.approval
    return {
        "id": action.id,
        "state": action.state.value,
        "tool": action.call.tool,
        "target": target_summary(action.call),
        "requester": action.requester.model_dump(mode="json"),
        "created_at": action.created_at,
        "updated_at": action.updated_at,
        "expires_at": action.expires_at,
        "fingerprint": action.fingerprint,
        "decision": {
            "outcome": action.decision.outcome,
            "reasons": [r.model_dump() for r in action.decision.reasons],
            "warnings": [r.model_dump() for r in action.decision.warnings],
            "approval": needs.model_dump() if needs else None,
            "bundle_revision": action.decision.bundle_revision,
            "decision_id": action.decision.decision_id,
        },
        "approvals": [a.model_dump(mode="json") for a in action.approvals],
        "call": redacted_call(action.call),
        "changes": [change_diff(a) for a in action.call.actions],
        "result": redact(action.result) if action.result is not None else None,
        "error": action.error,
    }


async def show_action(store: QueueStore, ref: str) -> dict[str, Any]:
    """``queue show``: a parked action's ``action_view`` with its rollback (``rolled_back``:
    by which action, whom and when, or ``None``), or, for a change that ran without
    approval, what the reversal journal may show of it (``executed``: true). Raises
    ``UnknownAction`` when it is neither."""
    try:
        action_id = await store.resolve(ref)
    except UnknownAction:
        view = await store.journal.view(await store.journal.resolve(ref))
        if view is None:
            raise
        return {**view, "id": view["action_id"], "executed": True}
    journal = await store.journal.view(action_id)
    return {**action_view(await store.get(action_id)), "rolled_back": (journal or {}).get("rolled_back")}
