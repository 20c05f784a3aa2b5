"""The workload rules' fast paths never hide a finding.

``lib.hardened`` (and ``lib.soft``, its negation), the baseline rule's ``_suspect`` and the
restricted rule's ``_gap`` let a hardened workload skip the per-container checks. If one of
them ever held for a workload with a finding, that finding would go unreported. The
hardened sample is bent in one to three places (a seeded fuzz, so a failure reproduces),
and the real ``opa`` checks, for each bent workload, that every gated rule reports exactly
what it reports with the fast paths forced off.
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
BASE = REGO_DIR / "rules" / "pod_security_restricted" / "samples" / "allowed" / "hardened_deployment.json"
BENT = 1500

CONTEXT_KEYS = [
    "privileged", "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser", "runAsGroup", "capabilities",
    "seccompProfile", "appArmorProfile", "seLinuxOptions", "windowsOptions", "procMount",
    "readOnlyRootFilesystem",
]  # fmt: skip
POD_KEYS = [
    "runAsNonRoot", "runAsUser", "seccompProfile", "sysctls", "seLinuxOptions", "windowsOptions",
    "appArmorProfile", "fsGroup", "supplementalGroups",
]  # fmt: skip
VALUES: list[Any] = [
    True, False, None, 0, 1, 1000, -1, "x", "true", [], {}, ["ALL"],
    {"type": "Unconfined"}, {"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "p"},
    {"drop": ["ALL"]}, {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    {"add": ["SYS_ADMIN"]}, {"drop": "ALL"},
    {"hostProcess": True}, {"hostProcess": False}, {"user": "u"}, {"type": "spc_t"}, {"type": "container_t"},
    "Default", "Unmasked", [{"name": "kernel.msgmax", "value": "1"}],
    [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
]  # fmt: skip


def _container(spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    containers: list[dict[str, Any]] = spec["containers"]
    return rng.choice(containers)


def _bend_once(spec: dict[str, Any], meta: dict[str, Any], rng: random.Random) -> None:
    kind = rng.randrange(11)
    if kind == 0:
        context = _container(spec, rng).setdefault("securityContext", {})
        if isinstance(context, dict):
            context[rng.choice(CONTEXT_KEYS)] = copy.deepcopy(rng.choice(VALUES))
    elif kind == 1:
        context = _container(spec, rng).get("securityContext")
        if isinstance(context, dict) and context:
            del context[rng.choice(sorted(context))]
    elif kind == 2:
        spec.setdefault("securityContext", {})[rng.choice(POD_KEYS)] = copy.deepcopy(rng.choice(VALUES))
    elif kind == 3:
        context = spec.get("securityContext") or {}
        if context:
            del context[rng.choice(sorted(context))]
    elif kind == 4:
        port = {"containerPort": 8080, "hostPort": rng.choice([0, 80, 8080, "80", None, False])}
        # A list as it should be, or the one port given as an object.
        _container(spec, rng)["ports"] = rng.choice([[port], port])
    elif kind == 5:
        probe = rng.choice(["livenessProbe", "readinessProbe", "startupProbe"])
        handler = rng.choice(["httpGet", "tcpSocket"])
        settings: dict[str, Any] = {"port": 8080}
        if rng.random() < 0.5:
            settings["host"] = rng.choice(["", "10.0.0.1"])
        value = rng.choice([{handler: settings}, {handler: "x"}, False, "x"])
        if rng.random() < 0.25:
            probe, value = "lifecycle", rng.choice([{"postStart": value}, value])
        _container(spec, rng)[probe] = value
    elif kind == 6:
        volume = rng.choice(
            [{"emptyDir": {}}, {"nfs": {"server": "s", "path": "/"}}, {"hostPath": {"path": "/"}}]
        )
        spec.setdefault("volumes", []).append({"name": f"v{rng.randrange(100)}", **volume})
    elif kind == 7:
        key = rng.choice([
            "container.apparmor.security.beta.kubernetes.io/app",
            "seccomp.security.alpha.kubernetes.io/pod",
            "example.com/note",
        ])  # fmt: skip
        meta.setdefault("annotations", {})[key] = rng.choice(["unconfined", "runtime/default", "x"])
    elif kind == 8:
        spec[rng.choice(["hostNetwork", "hostPID", "hostIPC"])] = rng.choice([True, False, "true"])
    elif kind == 9:
        _container(spec, rng)["securityContext"] = copy.deepcopy(rng.choice(VALUES))
    else:
        twin = copy.deepcopy(_container(spec, rng))
        twin["name"] = f"twin{rng.randrange(100)}"
        spec[rng.choice(["containers", "initContainers", "ephemeralContainers"])] = [
            *spec.get("containers", []),
            twin,
        ]


def _bend(action: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    bent = copy.deepcopy(action)
    template = bent["object"]["spec"]["template"]
    if rng.random() < 0.5:
        # Without the sample's readiness probe, the baseline rule's fast path holds too.
        for container in template["spec"]["containers"]:
            container.pop("readinessProbe", None)
    for _ in range(rng.choice([1, 1, 2, 3])):
        _bend_once(template["spec"], template["metadata"], rng)
    return bent


# The gated rules' findings, as one Rego array: evaluated as they are and with every fast
# path forced off.
GATED = """[
    data.rules.pod_security_baseline.violation,
    data.rules.pod_security_restricted.violation,
    data.rules.no_dangerous_capabilities.violation,
    data.rules.known_action.violation,
    data.rules.no_host_namespaces.violation,
]"""

QUERY = f"""
[[normal, forced] |
    some action in input
    normal := {GATED} with input as action
    forced := {GATED} with input as action
        with data.lib.hardened as false
        with data.lib.soft as true
        with data.rules.pod_security_baseline._suspect as true
        with data.rules.pod_security_restricted._gap as true
]
"""


def test_fast_paths_never_hide_a_finding() -> None:
    rng = random.Random(15)
    base = json.loads(BASE.read_text())
    actions = [base] + [_bend(base, rng) for _ in range(BENT)]
    out = subprocess.run(
        [find_opa(), "eval", "-f", "json", "--stdin-input", "-d", str(REGO_DIR), "--ignore=samples", QUERY],
        input=json.dumps(actions),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs: list[list[Any]] = json.loads(out)["result"][0]["expressions"][0]["value"]
    assert len(pairs) == len(actions)
    differing = [i for i, (normal, forced) in enumerate(pairs) if normal != forced]
    assert differing == [], json.dumps(actions[differing[0]]["object"]["spec"]["template"], indent=1)
    # The fuzz reaches both sides: hardened workloads and ones each rule reports on.
    reported = [any(normal) for normal, _ in pairs]
    assert not reported[0]
    assert 0.2 < sum(reported) / len(reported) < 0.95
