"""docs/policies.md is generated from the policy's METADATA and data, and stays current."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from gateway.local.opa import find_opa

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("policy_docs", ROOT / "scripts" / "policy_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


policy_docs = _load_generator()


def test_policies_doc_is_current() -> None:
    expected = policy_docs.generate(find_opa())
    assert (ROOT / "docs" / "policies.md").read_text() == expected, "stale: run `make policy-docs`"


def test_every_rule_folder_has_complete_metadata() -> None:
    rules = policy_docs.annotations(find_opa())
    assert policy_docs.problems(rules) == []
    folders = {p.name for p in (ROOT / "rego" / "rules").iterdir() if p.is_dir()}
    assert folders <= set(rules)


def test_metadata_problems_are_reported() -> None:
    rules = {
        "a": {"title": "A", "description": "d", "custom": {"code": "X-1", "severity": "big", "mode": "deny"}},
        "b": {"title": "", "description": "d", "custom": {"code": "X-1", "severity": "low", "mode": "off"}},
    }
    assert policy_docs.problems(rules) == [
        "a: severity 'big' is not one of ('info', 'low', 'medium', 'high', 'critical')",
        "b: no title",
        "b: mode 'off' is not one of ('deny', 'needs_approval', 'warn', 'dryrun')",
        "b: code X-1 is also used by a",
    ]


def test_doc_lists_every_parameter_block_and_the_unmapped_default() -> None:
    params = json.loads((ROOT / "rego" / "data.json").read_text())["params"]
    doc = (ROOT / "docs" / "policies.md").read_text()
    for name in params["rules"]:
        assert f"`data.params.rules.{name}`" in doc
    assert json.dumps(params["rules"]["principal_scope"], indent=2, sort_keys=True) in doc
    assert "**No mapped group**" in doc
    assert "GATEWAY_GROUPS=sre" in doc
