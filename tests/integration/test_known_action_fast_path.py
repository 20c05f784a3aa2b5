"""known_action's fast path never vouches for an action that has a problem.

The rule proves the common shapes of a well-formed action in one body and lists problems
only when that fails; if the fast path ever held for an action with a problem, the
problem would go unreported and the action through. Every allowed sample of every rule
is bent in one to three fields, most often one, (a seeded fuzz, so a failure reproduces) and the real
``opa`` checks, for each bent action, that the fast path and the problem list never both
hold.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.local.opa import find_opa

pytestmark = pytest.mark.integration

REGO_DIR = Path(__file__).resolve().parents[2] / "rego"
BASES = sorted(REGO_DIR.glob("rules/*/samples/allowed/*.json"))

FIELDS = [
    ("version",),
    ("tool",),
    ("backend",),
    ("operation",),
    ("effect",),
    ("principal",),
    ("principal", "subject"),
    ("principal", "groups"),
    ("principal", "authenticated"),
    ("target",),
    ("target", "kind"),
    ("target", "cluster"),
    ("object",),
    ("object", "kind"),
    ("object", "spec", "containers"),
    ("object", "spec", "template", "spec", "containers"),
    ("object", "spec", "template", "spec", "initContainers"),
    ("args",),
    ("approvals",),
]
VALUES: list[Any] = [
    None, "", " ", "x", "Deployment", "deployment", "Secret", 0, 1, 2, True, False, [], {},
    ["sre"], [1], ["sre", 1], {"a": "sre"}, "k8s_get", "k8s_apply", "palette_get_cluster",
    "kubernetes", "palette", "read", "write", "delete", "get", "apply",
]  # fmt: skip
_MISSING = object()
BENT = 3000


def _bend(action: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    bent = copy.deepcopy(action)
    for path in rng.sample(FIELDS, rng.choice([1, 1, 2, 3])):
        parent = bent
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        value = rng.choice([*VALUES, _MISSING])
        if value is _MISSING:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = copy.deepcopy(value)
    return bent


def _evaluate(actions: list[dict[str, Any]], query: str) -> Any:
    policy = ["-d", str(REGO_DIR), "--ignore", "samples"]
    out = subprocess.run(
        [find_opa(), "eval", "-f", "json", "--stdin-input", *policy, query],
        input=json.dumps(actions),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["result"][0]["expressions"][0]["value"]


def test_fast_path_never_holds_for_an_action_with_a_problem() -> None:
    rng = random.Random(20261122)
    bases = [json.loads(path.read_text()) for path in BASES]
    actions = [_bend(rng.choice(bases), rng) for _ in range(BENT)] + bases
    rule = "data.rules.known_action"
    fast_path = f"{rule}._well_formed with input as a"
    problems = f"count({rule}._problems) > 0 with input as a"
    fast = _evaluate(actions, f"[i | some i, a in input; {fast_path}]")
    hidden = _evaluate(actions, f"[i | some i, a in input; {fast_path}; {problems}]")
    assert hidden == [], [actions[i] for i in hidden[:3]]
    # Not vacuous: the fast path holds for samples and for some bent actions, not for all.
    bent_fast = [i for i in fast if i < BENT]
    assert any(i >= BENT for i in fast)
    assert 0 < len(bent_fast) < BENT
