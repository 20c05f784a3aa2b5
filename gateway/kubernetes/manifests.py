"""``k8s_apply`` manifests: YAML or JSON text, one or more objects, validated before use.

Nothing here talks to the cluster. A manifest is bounded in bytes and documents, must be
made of mappings with ``apiVersion``, ``kind`` and ``metadata.name``, and may not use YAML
anchors or aliases: an alias can expand a few hundred bytes into gigabytes once the
object is serialised for policy. ``kind: List`` documents are flattened, as kubectl does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from gateway.errors import InvalidArguments, PayloadTooLarge
from gateway.kubernetes.names import check_label, check_object_name

__all__ = ["Manifest", "parse_manifest"]

JSON = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """The parsed objects, in order, and the digest of the text they came from."""

    objects: tuple[JSON, ...]
    sha256: str
    size: int

    def policy_args(self) -> JSON:
        """What policy sees of the call's arguments instead of the text."""
        return {"manifest_sha256": self.sha256, "manifest_bytes": self.size, "documents": len(self.objects)}


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*ref``)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not accepted in manifests", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_manifest(text: str, *, max_bytes: int, max_documents: int) -> Manifest:
    """Parse and validate; ``InvalidArguments`` or ``PayloadTooLarge`` say what is wrong."""
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the manifest is {len(raw)} bytes; the limit is {max_bytes}")
    if not text.strip():
        raise InvalidArguments("the manifest is empty: give one or more YAML or JSON objects")
    documents = _load(text)
    objects: list[JSON] = []
    for position, document in enumerate(documents, start=1):
        if document is None:
            continue
        if isinstance(document, dict) and document.get("kind") == "List" and "items" in document:
            items = document.get("items")
            if not isinstance(items, list):
                raise InvalidArguments(f"document {position}: 'items' of a List must be a list")
            objects.extend(
                _checked(item, f"document {position}, item {i}") for i, item in enumerate(items, 1)
            )
        else:
            objects.append(_checked(document, f"document {position}"))
        if len(objects) > max_documents:
            raise PayloadTooLarge(f"the manifest has more than {max_documents} objects; apply it in parts")
    if not objects:
        raise InvalidArguments("the manifest has no objects")
    _reject_duplicates(objects)
    return Manifest(objects=tuple(objects), sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))


def _load(text: str) -> list[Any]:
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            loaded = json.loads(text)
            return loaded if isinstance(loaded, list) else [loaded]
        return list(yaml.load_all(text, Loader=_NoAliasLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidArguments(f"the manifest is not valid YAML{where}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidArguments("the manifest is not valid YAML") from exc
    except json.JSONDecodeError as exc:
        raise InvalidArguments(
            f"the manifest is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise InvalidArguments("the manifest is nested too deeply") from exc


def _checked(document: Any, where: str) -> JSON:
    if not isinstance(document, dict):
        raise InvalidArguments(f"{where}: expected an object (a mapping), got {type(document).__name__}")
    for field in ("apiVersion", "kind"):
        if not isinstance(document.get(field), str) or not document[field]:
            raise InvalidArguments(f"{where}: '{field}' is required")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        raise InvalidArguments(f"{where}: 'metadata' with a 'name' is required")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        hint = " (generateName cannot be used with server-side apply)" if "generateName" in metadata else ""
        raise InvalidArguments(f"{where}: 'metadata.name' is required{hint}")
    try:
        check_object_name(name)
        namespace = metadata.get("namespace")
        if namespace is not None:
            check_label(namespace if isinstance(namespace, str) else "")
    except ValueError as exc:
        raise InvalidArguments(f"{where} ({document['kind']} {name!r}): {exc}") from None
    return document


def _reject_duplicates(objects: list[JSON]) -> None:
    seen: set[tuple[str, str, str | None, str]] = set()
    for obj in objects:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        if key in seen:
            raise InvalidArguments(f"the manifest has {obj['kind']} {meta['name']!r} more than once")
        seen.add(key)
