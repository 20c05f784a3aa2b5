"""The sandbox's configuration, without starting it: the large seed's plan, kwok's
configuration and log files, the CA that lets the API server verify kwok."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml
from cryptography import x509

from gateway.local.kwok import SIMULATE_ANNOTATION, SIMULATIONS, write_config
from gateway.local.pki import SandboxCA
from gateway.local.seed_scale import ScalePlan


def test_the_default_large_seed_is_5000_pods_over_50_namespaces_on_200_nodes() -> None:
    plan = ScalePlan.for_pods(5000)
    deployments = list(plan.deployments())
    assert (plan.nodes, plan.namespaces, len(deployments)) == (200, 50, 500)
    assert sum(replicas for _, _, replicas in deployments) == 5000
    assert {ns for ns, _, _ in deployments} == set(plan.namespace_names())


def test_an_uneven_seed_still_plans_exactly_the_pods_asked_for() -> None:
    plan = ScalePlan.for_pods(305, namespaces=3)
    per_namespace: dict[str, int] = {}
    for namespace, _, replicas in plan.deployments():
        assert 1 <= replicas <= plan.replicas
        per_namespace[namespace] = per_namespace.get(namespace, 0) + replicas
    assert per_namespace == {"scale-000": 102, "scale-001": 102, "scale-002": 101}
    assert plan.nodes == 13


def test_kwok_gets_every_stage_each_simulation_needs_and_logs_per_container(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all(write_config(tmp_path).read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds[0] == "KwokConfiguration"
    assert kinds.count("ClusterLogs") == 1
    stages = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Stage"}
    assert {"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"} <= set(
        stages
    )
    simulated: dict[str, set[str]] = {"Node": set(), "Pod": set()}
    for stage in stages.values():
        for expression in stage["spec"]["selector"]["matchExpressions"]:
            if SIMULATE_ANNOTATION in expression["key"] and expression["operator"] == "In":
                simulated[stage["spec"]["resourceRef"]["kind"]] |= set(expression["values"])
    assert simulated == {kind: set(values) for kind, values in SIMULATIONS.items()}

    (logs,) = [d for d in documents if d["kind"] == "ClusterLogs"]
    entries = logs["spec"]["logs"]
    assert [e.get("containers") for e in entries] == [["web"], ["worker"], ["api"], ["postgres"], None]
    worker = Path(entries[1]["logsFile"]).read_text().splitlines()
    assert all(re.fullmatch(r"\S+Z (stdout|stderr) F .+", line) for line in worker)
    assert worker[-1].endswith("stderr F panic: queue backend unavailable")


def test_kwoks_serving_certificate_is_issued_by_the_sandbox_ca_for_loopback(tmp_path: Path) -> None:
    ca = SandboxCA(tmp_path)
    pair = ca.serving("kwok")
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    issuer = x509.load_pem_x509_certificate(ca.pair.cert.read_bytes())
    cert.verify_directly_issued_by(issuer)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert oct(pair.key.stat().st_mode & 0o777) == "0o600"
    assert oct(ca.pair.key.stat().st_mode & 0o777) == "0o600"
    assert ca.serving("kwok").cert.read_bytes() == pair.cert.read_bytes()  # kept while valid
