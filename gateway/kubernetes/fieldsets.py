"""The manifests that undo a server-side apply or a delete, from the object as it was.

Server-side apply keeps, per field manager, the set of fields it owns
(``metadata.managedFields[].fieldsV1``: ``f:<field>`` for map keys, ``k:<json>`` for list
items by their merge key, ``v:<json>`` for set members, ``i:<n>`` for positions, ``.``
for the node itself). Applying a manifest under a manager makes exactly its fields that
manager's: fields the manager owned before and that the manifest leaves out are removed
(when no other manager owns them too).

So the gateway's apply is undone by applying, under the same field manager, the fields it
owned before or after that apply, with the values they had before (``restore_manifest``):
fields the apply added disappear, fields it changed get their old values, fields it dropped
come back. Fields other managers own are not touched.

A Secret is the exception: its ``stringData`` is write-only, converted into ``data`` after
ownership is recorded, so an apply through ``stringData`` owns keys that never exist in the
object and changes ``data`` keys it does not own (and cannot remove by applying again). Its
undo is a merge patch (``secret_restore_patch``): every key the gateway's applies wrote,
through either field, gets its old value back or is removed, as are the labels and
annotations they set.

A deleted object is re-created from its last state without what the server sets
(``recreate_manifest``): a new uid, version and creation time.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from gateway.kubernetes.guards import CONTROLLER_ANNOTATIONS

__all__ = ["owned_fields", "recreate_manifest", "restore_manifest", "secret_restore_patch", "union"]

JSON = dict[str, Any]
_SERVER_METADATA: Final[frozenset[str]] = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def owned_fields(obj: JSON | None, manager: str) -> JSON:
    """The fields ``manager`` owns in ``obj`` through apply (``fieldsV1``), merged."""
    owned: JSON = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if (
            isinstance(entry, dict)
            and entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
            and isinstance(entry.get("fieldsV1"), dict)
        ):
            owned = union(owned, entry["fieldsV1"])
    return owned


def union(a: JSON, b: JSON) -> JSON:
    """Two field sets merged."""
    out = copy.deepcopy(a)
    for key, sub in b.items():
        out[key] = union(out[key], sub) if isinstance(out.get(key), dict) and isinstance(sub, dict) else sub
    return out


def restore_manifest(before: JSON, after: JSON, manager: str) -> JSON:
    """What ``manager`` applies to undo its apply that turned ``before`` into ``after``."""
    fields = union(owned_fields(before, manager), owned_fields(after, manager))
    body = _extract_map(before, fields)
    return _placed(before, body)


def secret_restore_patch(before: JSON, after: JSON, manager: str) -> JSON:
    """The merge patch that undoes ``manager``'s apply to a Secret (see the module docstring)."""
    fields = union(owned_fields(before, manager), owned_fields(after, manager))
    keys = sorted({*_names(fields.get("f:data")), *_names(fields.get("f:stringData"))})
    patch: JSON = {}
    if keys:
        old = before.get("data") or {}
        patch["data"] = {key: old.get(key) for key in keys}
    meta_fields = fields.get("f:metadata") or {}
    meta: JSON = {}
    for section in ("labels", "annotations"):
        names = _names(meta_fields.get(f"f:{section}"))
        if names:
            old = (before.get("metadata") or {}).get(section) or {}
            meta[section] = {name: old.get(name) for name in sorted(names)}
    if meta:
        patch["metadata"] = meta
    return patch


def _names(fields: Any) -> list[str]:
    return [key[2:] for key in fields or {} if key.startswith("f:")]


def recreate_manifest(before: JSON) -> JSON:
    """``before`` without what the server sets: its status, identity and versions, and the
    annotations controllers keep on it."""
    body = {k: copy.deepcopy(v) for k, v in before.items() if k != "status"}
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in CONTROLLER_ANNOTATIONS
    }
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    body["metadata"] = meta
    return body


def _placed(source: JSON, body: JSON) -> JSON:
    """``body`` with the type and name of ``source``, which every manifest needs."""
    meta = dict(body.get("metadata") or {})
    source_meta = source.get("metadata") or {}
    for key in ("name", "namespace"):
        if source_meta.get(key):
            meta[key] = source_meta[key]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in CONTROLLER_ANNOTATIONS
    }
    if "annotations" in meta:
        meta["annotations"] = annotations
    return {"apiVersion": source.get("apiVersion"), "kind": source.get("kind"), **body, "metadata": meta}


def _extract_map(value: JSON, fields: JSON) -> JSON:
    out: JSON = {}
    for key, sub in fields.items():
        if key.startswith("f:") and key[2:] in value:
            sub = sub if isinstance(sub, dict) else {}
            part = _extract(value[key[2:]], sub)
            # A map or list none of whose owned members exist is left out, unless the
            # node itself was owned: applying it empty would claim it.
            if part in ({}, []) and sub and "." not in sub:
                continue
            out[key[2:]] = part
    return out


def _extract(value: Any, fields: JSON) -> Any:
    """The part of ``value`` the field set names: all of it for a leaf (or an atomic list
    or map, owned whole); for a node owned only as such (``.``), its empty shape."""
    children = {k: v for k, v in fields.items() if k != "."}
    if not fields:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return _extract_map(value, children)
    if isinstance(value, list):
        return _extract_list(value, children)
    return copy.deepcopy(value)


def _extract_list(items: list[Any], fields: JSON) -> list[Any]:
    out: list[Any] = []
    for index, item in enumerate(items):
        for key, sub in fields.items():
            kind, _, raw = key.partition(":")
            if kind == "k" and isinstance(item, dict) and _has(item, json.loads(raw)):
                out.append({**json.loads(raw), **_extract(item, sub)} if sub else copy.deepcopy(item))
                break
            if kind == "v" and item == json.loads(raw):
                out.append(copy.deepcopy(item))
                break
            if kind == "i" and raw.isdigit() and int(raw) == index:
                out.append(_extract(item, sub))
                break
    return out


def _has(item: JSON, keys: JSON) -> bool:
    return all(item.get(k) == v for k, v in keys.items())
