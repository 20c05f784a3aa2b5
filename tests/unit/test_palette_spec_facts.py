"""The Palette spec facts kept in the repository: exactly what the regeneration script makes
of the upstream specification (when a copy is at hand), facts without prose, and enough for
every body the fake checks and every path the client calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.local.palette_spec import (
    CLIENT_OPERATIONS,
    FACTS_PATH,
    FAKE_DEFINITIONS,
    UPSTREAM_SPEC,
    SpecValidator,
    facts_from_spec,
    render_facts,
)

_FACTS = json.loads(FACTS_PATH.read_text(encoding="utf-8"))


def test_the_facts_are_what_the_script_makes_of_the_upstream_specification() -> None:
    if not UPSTREAM_SPEC.is_file():
        pytest.skip(
            f"no upstream Palette specification at {UPSTREAM_SPEC} (a plain clone has none): "
            "the facts in the repository are used as committed"
        )
    upstream = json.loads(UPSTREAM_SPEC.read_text(encoding="utf-8"))
    regenerated = render_facts(facts_from_spec(upstream))
    assert regenerated == FACTS_PATH.read_text(encoding="utf-8"), (
        "gateway/local/palette_spec_facts.json drifted from the upstream specification: "
        "run `make palette-spec-facts` and commit the result"
    )


def _schema_keys(schema: Any) -> set[str]:
    """Every keyword used at a schema position (property names are data, not keywords)."""
    if not isinstance(schema, dict):
        return set()
    keys = set(schema)
    for name, value in schema.items():
        if name == "properties":
            for sub in value.values():
                keys |= _schema_keys(sub)
        elif name in ("items", "additionalProperties"):
            keys |= _schema_keys(value)
        elif name == "allOf":
            for sub in value:
                keys |= _schema_keys(sub)
    return keys


def test_the_facts_hold_shapes_not_prose() -> None:
    used: set[str] = set()
    for schema in _FACTS["definitions"].values():
        used |= _schema_keys(schema)
    assert not used & {"description", "example", "title", "default"}
    assert not [key for key in used if key.startswith("x-")]
    assert {"type", "properties", "required", "$ref"} <= used


def test_every_body_the_fake_checks_is_in_the_facts() -> None:
    validator = SpecValidator(FACTS_PATH)
    for name in FAKE_DEFINITIONS:
        assert validator.has_definition(name), name


def test_the_reduction_keeps_required_lists_and_types_and_drops_the_rest() -> None:
    spec = {
        "info": {"title": "t", "version": "v"},
        "definitions": {
            name: {"type": "object", "x-omitempty": True, "description": "prose"} for name in FAKE_DEFINITIONS
        }
        | {
            "v1Error": {
                "type": "object",
                "description": "An error",
                "required": ["code"],
                "properties": {
                    "code": {"type": "string", "example": "E1"},
                    "description": {"$ref": "#/definitions/v1Detail"},
                },
            },
            "v1Detail": {"type": "object", "x-nullable": True},
            "v1Unused": {"type": "object"},
        },
        "paths": {},
    }
    for path, method in CLIENT_OPERATIONS:
        spec["paths"].setdefault(path, {})[method] = {"operationId": f"op-{method}"}
    facts = facts_from_spec(spec)
    assert facts["definitions"]["v1Error"] == {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string"}, "description": {"$ref": "#/definitions/v1Detail"}},
    }
    assert facts["definitions"]["v1Detail"] == {"type": "object"}
    assert "v1Unused" not in facts["definitions"]
    del spec["definitions"]["v1Detail"]
    with pytest.raises(KeyError, match="v1Detail"):
        facts_from_spec(spec)
