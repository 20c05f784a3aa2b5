"""docs/policies.md is generated from the policy's METADATA and data, and stays current."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

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
    custom_a = {"code": "X-1", "severity": "big", "mode": "deny", "reached_by": ["k8s_get"]}
    rules = {
        "a": {"title": "A", "description": "d", "custom": custom_a},
        "b": {"title": "", "description": "d", "custom": {"code": "X-1", "severity": "low", "mode": "off"}},
    }
    assert policy_docs.problems(rules) == [
        "a: severity 'big' is not one of ('info', 'low', 'medium', 'high', 'critical')",
        "b: needs either reached_by (tools) or defence_in_depth (why none)",
        "b: no title",
        "b: mode 'off' is not one of ('deny', 'needs_approval', 'warn', 'dryrun')",
        "b: code X-1 is also used by a",
    ]


def test_an_uncovered_pod_security_control_is_reported() -> None:
    rules = policy_docs.annotations(find_opa())
    assert policy_docs.pss_problems(rules) == []
    without = {name: meta for name, meta in rules.items() if name != "pod_security_restricted"}
    assert policy_docs.pss_problems(without) == [
        f"{control}: no rule with tests covers this Pod Security Standards control"
        for control in policy_docs.PSS_CONTROLS
        if control.startswith("restricted/") and control != "restricted/Running as Non-root user"
    ]


def test_doc_lists_every_parameter_block_and_the_unmapped_default() -> None:
    params = json.loads((ROOT / "rego" / "data.json").read_text())["params"]
    doc = (ROOT / "docs" / "policies.md").read_text()
    for name in params["rules"]:
        assert f"`data.params.rules.{name}`" in doc
    assert json.dumps(params["rules"]["principal_scope"], indent=2, sort_keys=True) in doc
    assert "**No mapped group**" in doc
    assert "GATEWAY_GROUPS=sre" in doc


def _test_names(rule: str) -> set[str]:
    text = (ROOT / "rego" / "rules" / rule / f"{rule}_test.rego").read_text()
    return set(re.findall(r"^(test_\w+) if", text, flags=re.MULTILINE))


def test_every_pod_security_control_has_tests_that_exist_and_deny() -> None:
    rules = policy_docs.annotations(find_opa())
    covered = policy_docs.pss_controls(rules)
    assert set(covered) == set(policy_docs.PSS_CONTROLS)
    for control, covering in covered.items():
        assert any(tests for _, tests in covering), f"{control}: no test"
        for rule, tests in covering:
            defined = _test_names(rule)
            for test in tests:
                assert test.startswith("test_deny_"), f"{control}: {test} is not named as a deny test"
                assert test in defined, f"{control}: {rule}_test.rego has no {test}"


def _opa_test(rego_dir: Path, rule: str, tests: list[str]) -> dict[str, bool]:
    """Run the named tests of a rule's test package; each test's name and whether it failed."""
    pattern = rf"^data\.rules\.{rule}_test\.({'|'.join(tests)})$"
    out = subprocess.run(
        [find_opa(), "test", "--ignore", "samples", "--format", "json", "--run", pattern, str(rego_dir)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    results: list[dict[str, Any]] = json.loads(out)
    return {r["name"]: bool(r.get("fail") or r.get("error")) for r in results}


def _neutralise(rego_dir: Path, rule: str) -> None:
    """Every body of the rule's violation set, and of the shape guard's, made to fail."""
    for name in (rule, "known_action"):
        path = rego_dir / "rules" / name / f"{name}.rego"
        text = re.sub(
            r"^(violation contains .* if \{)$", r"\1\n\tfalse", path.read_text(), flags=re.MULTILINE
        )
        path.write_text(text)


def test_every_listed_pod_security_test_fails_without_its_rule(tmp_path: Path) -> None:
    """A listed test passes with the policy, and fails once its rule (and the shape guard,
    which refuses wrong types) reports nothing: it really shows the control denied."""
    rules = policy_docs.annotations(find_opa())
    by_rule: dict[str, list[str]] = {}
    for covering in policy_docs.pss_controls(rules).values():
        for rule, tests in covering:
            by_rule.setdefault(rule, []).extend(tests)
    for rule, tests in by_rule.items():
        passing = _opa_test(ROOT / "rego", rule, tests)
        assert set(passing) == set(tests), rule
        assert not any(passing.values()), f"{rule}: {[t for t, failed in passing.items() if failed]} fail"
        mutated = tmp_path / rule
        shutil.copytree(ROOT / "rego", mutated)
        _neutralise(mutated, rule)
        failing = _opa_test(mutated, rule, tests)
        assert set(failing) == set(tests), rule
        still_passing = sorted(t for t, failed in failing.items() if not failed)
        assert still_passing == [], f"{rule}: these tests pass without the rule: {still_passing}"


def test_every_rule_says_which_tools_reach_it_or_why_none_does() -> None:
    rules = policy_docs.annotations(find_opa())
    catalog = json.loads((ROOT / "rego" / "data.json").read_text())["params"]["catalog"]
    for name, meta in rules.items():
        custom = meta["custom"]
        if "defence_in_depth" in custom:
            assert "reached_by" not in custom, name
            assert len(custom["defence_in_depth"]) > 40, name
            continue
        tools = custom["reached_by"]
        assert tools, name
        assert tools == ["*"] or set(tools) <= set(catalog), f"{name}: {set(tools) - set(catalog)}"


def test_guard_rules_are_the_ones_lib_knows() -> None:
    """lib.guards (what the combiner and the data guard exclude) names exactly the rules whose
    METADATA says guard: true (what the reason template makes deny-only)."""
    rules = policy_docs.annotations(find_opa())
    marked = {name for name, meta in rules.items() if meta["custom"].get("guard")}
    out = subprocess.run(
        [
            find_opa(),
            "eval",
            "-f",
            "json",
            "-d",
            str(ROOT / "rego"),
            "--ignore",
            "samples",
            "data.lib.guards",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        set(json.loads(out)["result"][0]["expressions"][0]["value"])
        == marked
        == {"known_action", "policy_data"}
    )
