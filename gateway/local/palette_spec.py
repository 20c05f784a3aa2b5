"""Palette's API specification as a validator, shared by the fake API and the tests.

The upstream specification (``palette-apis-spec.json``, "Palette APIs 4.8", Apache-2.0, from
spectrocloud/palette-sdk-go, ~2 MB of Swagger 2.0) is not part of the repository. What the
fake and the tests check against is: ``palette_spec_facts.json`` beside this module holds
the definitions the fake's endpoints use (and everything they reference) reduced to what a
body is checked against (field names, types, required lists, enums, bounds; no prose, no
examples, no Swagger extensions), and the operation id of every path the client calls.
``facts_from_spec`` is the reduction; ``scripts/palette_spec_facts.py`` (``make
palette-spec-facts``) rewrites the file from an upstream copy, and
tests/unit/test_palette_spec_facts.py fails when the two drift.

Definitions become one JSON Schema document (draft 4, the dialect Swagger 2.0 builds on), so
a body is checked against exactly the shapes Palette's Go server would decode.
``jsonschema`` is a development dependency: it is imported only when a validator is asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENT_OPERATIONS",
    "CREATE_ENTITIES",
    "FACTS_PATH",
    "FAKE_DEFINITIONS",
    "UPSTREAM_SPEC",
    "SpecValidator",
    "default_spec_path",
    "facts_from_spec",
    "load_spec",
    "render_facts",
]

FACTS_PATH = Path(__file__).with_name("palette_spec_facts.json")
# Where a checkout of the project finds the upstream copy, when it has one at all.
UPSTREAM_SPEC = Path(__file__).resolve().parents[3] / "shared" / "palette" / "palette-apis-spec.json"

# Create/validate body definition per cloud type, as the spec names them.
CREATE_ENTITIES: dict[str, str] = {
    "aws": "v1SpectroAwsClusterEntity",
    "azure": "v1SpectroAzureClusterEntity",
    "gcp": "v1SpectroGcpClusterEntity",
    "vsphere": "v1SpectroVsphereClusterEntity",
    "maas": "v1SpectroMaasClusterEntity",
    "eks": "v1SpectroEksClusterEntity",
    "edge-native": "v1SpectroEdgeNativeClusterEntity",
}

# The request and response bodies the fake checks (gateway.local.fake_palette).
FAKE_DEFINITIONS: tuple[str, ...] = (
    "v1Error",
    "v1SearchFilterSummarySpec",
    "v1SpectroClustersSummary",
    "v1SpectroCluster",
    "v1SpectroClusterUidSummary",
    "v1Events",
    "v1SpectroClusterCostSummary",
    "v1ClusterProfilesFilterSpec",
    "v1ClusterProfilesSummary",
    "v1ClusterProfile",
    "v1PacksFilterSpec",
    "v1PackMetadataList",
    "v1SpectroClusterValidatorResponse",
    "v1Uid",
    "v1SpectroClusterProfiles",
    *CREATE_ENTITIES.values(),
)

# Every (path, method) the client calls and the fake serves.
CLIENT_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("/v1/dashboard/spectroclusters/search", "post"),
    ("/v1/spectroclusters/{uid}", "get"),
    ("/v1/spectroclusters/{uid}", "delete"),
    ("/v1/dashboard/spectroclusters/{uid}/overview", "get"),
    ("/v1/events/components/{objectKind}/{objectUid}", "get"),
    ("/v1/dashboard/spectroclusters/{uid}/cost", "get"),
    ("/v1/dashboard/clusterprofiles", "post"),
    ("/v1/clusterprofiles/{uid}", "get"),
    ("/v1/packs/search", "post"),
    ("/v1/spectroclusters/{uid}/profiles", "put"),
    ("/v1/spectroclusters/{uid}/profiles", "patch"),
    *((f"/v1/spectroclusters/{cloud}", "post") for cloud in CREATE_ENTITIES),
    *((f"/v1/spectroclusters/{cloud}/validate", "post") for cloud in CREATE_ENTITIES),
)

# The JSON Schema (draft 4) keywords a body is checked against; the rest is prose
# (description, example, title), defaults, or Swagger's own extensions (x-...).
_KEYWORDS = frozenset(
    {
        "$ref",
        "additionalProperties",
        "allOf",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "items",
        "maxItems",
        "maxLength",
        "maximum",
        "minItems",
        "minLength",
        "minimum",
        "pattern",
        "properties",
        "required",
        "type",
        "uniqueItems",
    }
)


def default_spec_path() -> Path:
    """``GATEWAY_PALETTE_SPEC`` if set (an upstream copy, say), else the facts in the repository.

    This module runs outside ``gateway``'s settings (in tests and the fake's runner), so it
    reads its single override itself.
    """
    override = os.environ.get("GATEWAY_PALETTE_SPEC")
    return Path(override) if override else FACTS_PATH


def facts_from_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The facts file's content for an upstream ``spec``: ``FAKE_DEFINITIONS`` and every
    definition they reference, keywords only, and the ``CLIENT_OPERATIONS``' ids.

    Raises ``KeyError`` naming a definition or operation the spec does not have.
    """
    definitions: dict[str, Any] = spec["definitions"]
    kept: dict[str, Any] = {}
    pending = list(FAKE_DEFINITIONS)
    while pending:
        name = pending.pop()
        if name not in kept:
            kept[name] = _schema_facts(definitions[name])
            pending.extend(_references(kept[name]))
    paths: dict[str, dict[str, Any]] = {}
    for path, method in CLIENT_OPERATIONS:
        operation = spec["paths"][path][method]
        paths.setdefault(path, {})[method] = {"operationId": operation["operationId"]}
    info = spec.get("info") or {}
    return {
        "source": f"{info.get('title')} ({info.get('version')}), Apache-2.0, spectrocloud/palette-sdk-go; "
        "generated by scripts/palette_spec_facts.py: do not edit",
        "definitions": dict(sorted(kept.items())),
        "paths": dict(sorted(paths.items())),
    }


def render_facts(facts: dict[str, Any]) -> str:
    """The facts file's exact text: sorted keys, one key per line, so a diff reads well."""
    return json.dumps(facts, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _schema_facts(schema: Any) -> Any:
    """``schema`` with only the validating keywords (property names are data, kept whole)."""
    if isinstance(schema, list):
        return [_schema_facts(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _KEYWORDS:
            continue
        if key == "properties":
            out[key] = {name: _schema_facts(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "allOf"):
            out[key] = _schema_facts(value)
        else:
            out[key] = value
    return out


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _strip_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_extensions(v) for k, v in node.items() if not k.startswith("x-")}
    if isinstance(node, list):
        return [_strip_extensions(v) for v in node]
    return node


def load_spec(path: Path | None = None) -> dict[str, Any]:
    """The parsed specification or facts file (read once per path)."""
    return _load(path or default_spec_path())


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    return spec


class SpecValidator:
    """Validates JSON values against ``#/definitions/<name>`` of the facts (or of an upstream
    specification: both have ``definitions`` and ``paths``)."""

    def __init__(self, path: Path | None = None) -> None:
        spec = load_spec(path)
        self._definitions: dict[str, Any] = _strip_extensions(spec["definitions"])
        self._paths: dict[str, Any] = spec["paths"]
        self._cache: dict[str, Any] = {}

    def has_definition(self, name: str) -> bool:
        return name in self._definitions

    def operation(self, path: str, method: str) -> dict[str, Any]:
        """The spec's operation object for ``method path``; ``KeyError`` if the spec has none."""
        op: dict[str, Any] = self._paths[path][method.lower()]
        return op

    def errors(self, definition: str, value: Any) -> list[str]:
        """Every violation of ``definition`` by ``value``, as readable strings (empty = valid)."""
        from jsonschema import Draft4Validator  # type: ignore[import-untyped]

        validator = self._cache.get(definition)
        if validator is None:
            if definition not in self._definitions:
                raise KeyError(f"the Palette spec has no definition {definition!r}")
            schema = {"$ref": f"#/definitions/{definition}", "definitions": self._definitions}
            validator = Draft4Validator(schema)
            self._cache[definition] = validator
        return [
            f"{definition}: {'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
            for err in validator.iter_errors(value)
        ]
