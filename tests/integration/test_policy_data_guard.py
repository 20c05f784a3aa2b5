"""A parameter that is missing or of the wrong type refuses every action.

Rules read their parameters from bundle data, and a bad parameter does not fail loudly
in the rule that reads it: it switches the check off (a missing ``write_approval`` let
production writes through; an invalid pattern made every match undefined). The
``policy_data`` rule checks every parameter. Here every parameter in ``rego/data.json``
is removed, and replaced by values of other types, one at a time, and the real ``opa``
decides an ordinary read with each: every one must be denied with ``GW-DATA-001``.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.local.opa import find_opa

pytestmark = pytest.mark.integration

REGO_DIR = Path(__file__).resolve().parents[2] / "rego"
READ = REGO_DIR / "rules" / "policy_data" / "samples" / "allowed" / "ordinary_read.json"
_REMOVED = object()
OTHER_TYPES: list[Any] = ["text", 7, True, None, [], {}]
# The numbers that need not be whole: a percentage and a TTL in seconds.
FRACTIONS_ALLOWED = {"max_change_percent", "ttl_seconds"}
# Lists of numbers rather than strings: each entry a port, 1 to 65535.
PORT_LISTS = {"allowed_host_ports"}
# Lists of objects: an entry without a field the rule reads.
OBJECT_LISTS = {"sources": {"tool": "k8s_logs"}}

ParamPath = tuple[str, ...]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _wrong_for(name: str, value: Any) -> list[Any]:
    """Values a parameter like ``value`` must not take: other types, a list with an entry
    that is not a string, an object with an unexpected entry, a negative number, and a
    fraction where a whole number is counted."""
    wrong = [v for v in OTHER_TYPES if _json_type(v) != _json_type(value)]
    if name in PORT_LISTS:
        wrong += [["80"], [0], [65536], [80.5]]
    elif name in OBJECT_LISTS:
        wrong += [[7], [OBJECT_LISTS[name]]]
    elif isinstance(value, list):
        wrong.append([7])
    if isinstance(value, dict):
        wrong.append({"key": 7})
    if path_is_setting(name, value):
        wrong.append("ignore")
    if _json_type(value) == "number":
        wrong.append(-1)
        if name not in FRACTIONS_ALLOWED:
            wrong.append(2.5)
    return wrong


def path_is_setting(name: str, value: Any) -> bool:
    """A pre-existing setting (warn or enforce): another word is as wrong as another type."""
    return value in ("warn", "enforce")


def _parameters(params: dict[str, Any]) -> Iterator[tuple[ParamPath, Any]]:
    """Every parameter a rule reads: each field of each rule block, the approval
    defaults, the production settings and each catalog entry's fields."""
    for rule, block in params["rules"].items():
        for name, value in block.items():
            yield ("rules", rule, name), value
    for name, value in params["approval"].items():
        yield ("approval", name), value
    for name, value in params["production"].items():
        yield ("production", name), value
    for tool, entry in params["catalog"].items():
        for name, value in entry.items():
            yield ("catalog", tool, name), value
    for rule, operations in params["preexisting"].items():
        for operation, setting in operations.items():
            yield ("preexisting", rule, operation), setting


def _with(params: dict[str, Any], path: ParamPath, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(params)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    if value is _REMOVED:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


def _decide_with_each(params_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    query = (
        "[d | action := input.action; some params in input.params; "
        "d := data.gateway.decision with input as action with data.params as params]"
    )
    out = subprocess.run(
        [find_opa(), "eval", "-f", "json", "--stdin-input", "-d", str(REGO_DIR), "--ignore=samples", query],
        input=json.dumps({"action": json.loads(READ.read_text()), "params": params_list}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    decisions: list[dict[str, Any]] = json.loads(out)["result"][0]["expressions"][0]["value"]
    return decisions


def test_every_missing_or_mistyped_parameter_refuses_every_action() -> None:
    params = json.loads((REGO_DIR / "data.json").read_text())["params"]
    cases = [
        (path, wrong)
        for path, value in _parameters(params)
        # A pre-existing setting may be left out (the rule then enforces); any other may not.
        for wrong in [*([] if path[0] == "preexisting" else [_REMOVED]), *_wrong_for(path[-1], value)]
    ]
    shipped, *decisions = _decide_with_each([params] + [_with(params, path, wrong) for path, wrong in cases])

    assert shipped["outcome"] == "allow", shipped
    slipped = [
        (".".join(path), "removed" if wrong is _REMOVED else wrong)
        for (path, wrong), decision in zip(cases, decisions, strict=True)
        if decision["outcome"] != "deny" or "GW-DATA-001" not in {r["code"] for r in decision["reasons"]}
    ]
    assert slipped == []
    # Every rule block is covered, each parameter with several wrong values.
    assert {path[1] for path, _ in cases if path[0] == "rules"} == set(params["rules"])
    assert len(cases) > 5 * sum(1 for _ in _parameters(params))


def test_the_refusal_names_the_parameter() -> None:
    params = json.loads((REGO_DIR / "data.json").read_text())["params"]
    broken = _with(params, ("rules", "production_protection", "write_approval"), _REMOVED)
    broken = _with(broken, ("rules", "argument_hygiene", "injection_patterns"), ["(?i)ignore("])
    (decision,) = _decide_with_each([broken])
    messages = sorted(r["message"] for r in decision["reasons"] if r["code"] == "GW-DATA-001")
    assert messages == [
        "policy data is incomplete: params.rules.argument_hygiene.injection_patterns must be a list of"
        " valid regular expressions",
        "policy data is incomplete: params.rules.production_protection.write_approval must be an object of"
        " min_approvals, ttl_seconds (each 1 or more) and allow_self_approval",
    ]


def test_mode_overrides_and_preexisting_settings_are_checked_too() -> None:
    params = json.loads((REGO_DIR / "data.json").read_text())["params"]
    broken = [
        _with(params, ("modes",), {"no_latest_tag": "off"}),
        _with(params, ("modes",), "warn"),
        # A guard in warn or dryrun would let malformed actions or data through.
        _with(params, ("modes",), {"known_action": "warn"}),
        _with(params, ("modes",), {"policy_data": "dryrun"}),
        _with(params, ("preexisting",), "warn"),
        _with(params, ("preexisting",), {"no_root": "warn"}),
        _with(params, ("preexisting",), {"known_action": {"apply": "warn"}}),
    ]
    fine = [
        _with(params, ("modes",), {"known_action": "deny", "no_latest_tag": "warn"}),
        _with(params, ("preexisting",), {}),
    ]
    decisions = _decide_with_each(broken + fine)
    for decision in decisions[: len(broken)]:
        assert decision["outcome"] == "deny", decision
        assert {r["code"] for r in decision["reasons"]} == {"GW-DATA-001"}, decision
    assert [d["outcome"] for d in decisions[len(broken) :]] == ["allow", "allow"]
