"""Palette's own Swagger 2.0 specification as a validator, shared by the fake API and the tests.

The specification (``palette-apis-spec.json``, "Palette APIs 4.8", Apache-2.0, from
spectrocloud/palette-sdk-go) is read from disk, never copied into the repository. Its
``definitions`` become one JSON Schema document (draft 4, the dialect Swagger 2.0 builds on);
Swagger-only keys (``x-omitempty``, ``x-nullable`` …) are dropped, so a body is checked against
exactly the shapes Palette's Go server would decode. ``jsonschema`` is a development
dependency: it is imported only when a validator is asked for.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["CREATE_ENTITIES", "SpecValidator", "default_spec_path", "load_spec"]

_REPO = Path(__file__).resolve().parents[2]

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


def default_spec_path() -> Path:
    """``GATEWAY_PALETTE_SPEC`` if set, else the shared copy beside the repository.

    This module runs outside ``gateway``'s settings (in tests and the fake's runner), so it
    reads its single override itself.
    """
    override = os.environ.get("GATEWAY_PALETTE_SPEC")
    return Path(override) if override else _REPO.parent / "shared" / "palette" / "palette-apis-spec.json"


def _strip_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_extensions(v) for k, v in node.items() if not k.startswith("x-")}
    if isinstance(node, list):
        return [_strip_extensions(v) for v in node]
    return node


def load_spec(path: Path | None = None) -> dict[str, Any]:
    """The parsed specification (read once per path)."""
    return _load(path or default_spec_path())


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    return spec


class SpecValidator:
    """Validates JSON values against ``#/definitions/<name>`` of the specification."""

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
