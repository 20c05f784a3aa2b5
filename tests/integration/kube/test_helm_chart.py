"""The Helm chart ``deploy/helm/policy-gateway``: linted and rendered by the real ``helm``
(default values and values-ha.yaml), every rendered object applied with server-side dry-run
to the sandbox kube-apiserver, every rendered object judged by the project's own bundle
through the gateway's ``gateway_check`` (the decision is printed), and the OPA sidecar's
rendered command and configuration run for real, from a ConfigMap bundle and from a bundle
server with a signed bundle."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from mcp import Client

from gateway.kubernetes.tools import open_backend
from gateway.local.opa import OpaServer, build_bundle, find_opa
from gateway.local.process import ManagedProcess, answers_200, free_port, wait_until
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "policy-gateway"
HA = CHART / "values-ha.yaml"
NAMESPACE = "policy-gateway"
RELEASE = "gw"


def _helm() -> str:
    found = os.environ.get("GATEWAY_HELM_BIN") or shutil.which("helm")
    if not found or not os.access(found, os.X_OK):
        raise AssertionError("no helm binary: run `make setup` (GATEWAY_HELM_BIN)")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_helm(), *args], capture_output=True, text=True, check=False, timeout=120)


def render(*options: str) -> list[dict[str, Any]]:
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *options)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def ha() -> list[dict[str, Any]]:
    return render("-f", str(HA))


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind]
    return found


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec = only(docs, "Deployment")["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"] + spec.get("initContainers", [])}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# -- lint and render ---------------------------------------------------------------------


@pytest.mark.parametrize("values", [[], ["-f", str(HA)]], ids=["default", "ha"])
def test_helm_lint_passes_strictly(values: list[str]) -> None:
    done = helm("lint", "--strict", str(CHART), *values)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (["--set", "replicaCount=3"], "replicaCount > 1 needs PostgreSQL"),
        (["--set", "auth.tokens=false"], "no caller could ever be authorised"),
        (
            ["--set", "opa.bundle.server.url=https://b.example.com"],
            "a bundle fetched over the network must be signed",
        ),
        (["--set", "gateway.approvalSignatures=required"], "needs auth.allowedSigners"),
    ],
    ids=["replicas-on-sqlite", "no-auth", "unsigned-remote-bundle", "signatures-without-signers"],
)
def test_values_that_cannot_work_are_refused_with_the_reason(values: list[str], says: str) -> None:
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values)
    assert done.returncode != 0
    assert says in done.stderr


def test_default_is_one_replica_on_sqlite_with_a_volume(default: list[dict[str, Any]]) -> None:
    deployment = only(default, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert only(default, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "GATEWAY_DATABASE_URL" not in env_of(containers(default)["gateway"])


def test_ha_runs_three_replicas_on_postgresql_from_a_secret(ha: list[dict[str, Any]]) -> None:
    deployment = only(ha, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    env = env_of(containers(ha)["gateway"])
    assert env["GATEWAY_DATABASE_URL"] == {"secretKeyRef": {"name": "policy-gateway-database", "key": "url"}}
    assert env["GATEWAY_STATELESS_HTTP"] == "true"
    assert env["GATEWAY_INSTANCE"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["GATEWAY_OIDC_ISSUER"] == {
        "secretKeyRef": {"name": "policy-gateway-auth", "key": "oidc-issuer"}
    }
    assert not [d for d in ha if d["kind"] == "PersistentVolumeClaim"]
    assert only(ha, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 2,
        "selector": deployment["spec"]["selector"],
    }
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


@pytest.mark.parametrize("which", ["default", "ha"])
def test_every_container_is_restricted_probed_limited_and_pinned(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs = request.getfixturevalue(which)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    allowed_volumes = {"emptyDir", "secret", "configMap", "persistentVolumeClaim", "projected", "downwardAPI"}
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= allowed_volumes, volume
    for name, container in containers(docs).items():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["runAsNonRoot"] is True, name
        assert not context.get("privileged"), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert container["image"].startswith("registry.example.com/"), name
        assert not container["image"].endswith(":latest"), name
        assert container["livenessProbe"], name
        assert container["readinessProbe"], name
    gateway = containers(docs)["gateway"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for entry in gateway["env"]:
        assert not ("KEY" in entry["name"] and "value" in entry and "FILE" not in entry["name"]), entry


@pytest.mark.parametrize("which", ["default", "ha"])
def test_rbac_grants_no_wildcard_no_escalation_and_no_secrets_by_default(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs = request.getfixturevalue(which)
    roles = [d for d in docs if d["kind"] in {"Role", "ClusterRole"}]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"], rule
            assert "*" not in rule["resources"], rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
            assert "secrets" not in rule["resources"], rule
    bindings = [d for d in docs if d["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    assert all(b["roleRef"]["name"] != "cluster-admin" for b in bindings)
    verbs = {v for r in roles for rule in r["rules"] for v in rule["verbs"]}
    if which == "default":  # read only: the write tools are off
        assert verbs == {"get", "list", "watch"}
        assert {r["kind"] for r in roles} == {"ClusterRole"}
    else:  # writes, in the two namespaces named, never deletes
        assert "patch" in verbs
        assert "delete" not in verbs
        assert sorted(r["metadata"]["namespace"] for r in roles if r["kind"] == "Role") == [
            "payments",
            "shop",
        ]


def test_network_policy_admits_the_port_and_limits_egress(ha: list[dict[str, Any]]) -> None:
    policy = only(ha, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(ingress["from"]) == 2
    ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {53, 443, 6443, 5432}


# -- the sandbox API server: server-side dry-run of every object -------------------------


def _ensure_namespace(admin: Any, name: str, environment: str) -> None:
    core = k8s.CoreV1Api(admin)
    with contextlib.suppress(k8s.ApiException):
        core.create_namespace({"metadata": {"name": name, "labels": {"environment": environment}}})


@pytest.mark.parametrize("which", ["default", "ha"])
def test_every_rendered_object_is_accepted_by_the_api_server_in_a_dry_run(
    which: str, request: pytest.FixtureRequest, kube_admin: Any
) -> None:
    docs = request.getfixturevalue(which)
    for name in (NAMESPACE, "payments", "shop"):
        _ensure_namespace(kube_admin, name, "production")
    dynamic = DynamicClient(kube_admin)
    for doc in docs:
        resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        applied = resource.server_side_apply(
            body=doc, field_manager="helm-chart-test", dry_run="All", force_conflicts=True
        )
        assert applied.metadata.name == doc["metadata"]["name"], doc["kind"]
    deployment = only(docs, "Deployment")
    with pytest.raises(NotFoundError):  # a dry run: nothing was created
        dynamic.resources.get(api_version="apps/v1", kind="Deployment").get(
            name=deployment["metadata"]["name"], namespace=NAMESPACE
        )


# -- the project's own policy: every object judged through gateway_check ---------------


@pytest.fixture
def judge_settings(kube_settings: Settings, opa_server: OpaServer, tmp_path: Path) -> Settings:
    return kube_settings.model_copy(
        update={
            "opa_url": opa_server.url,
            "db_path": tmp_path / "gateway.db",
            "subject": "platform",
            "groups": ("sre",),
        }
    )


async def _judge(settings: Settings, docs: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """Each object as the gateway would judge ``k8s_apply`` of it (server-side dry-run on the
    sandbox, then OPA with the project bundle); every decision is printed."""
    decisions = []
    async with Client(build_server(settings, backends=[lambda s, check: open_backend(s, check)])) as client:
        for doc in docs:
            manifest = yaml.safe_dump(doc, sort_keys=False)
            result = await client.call_tool(
                "gateway_check", {"tool": "k8s_apply", "arguments": {"manifest": manifest}}
            )
            assert not result.is_error, result.content
            decision = dict(result.structured_content or {})
            codes = [f"{r['code']}:{r['effect']}" for r in decision.get("reasons", [])]
            print(f"[{label}] {doc['kind']}/{doc['metadata']['name']}: {decision.get('outcome')} {codes}")
            decisions.append(decision)
    return decisions


@pytest.mark.parametrize("which", ["default", "ha"])
async def test_every_rendered_object_passes_the_projects_own_policy(
    which: str, request: pytest.FixtureRequest, judge_settings: Settings, kube_admin: Any
) -> None:
    docs = request.getfixturevalue(which)
    for name in (NAMESPACE, "payments", "shop"):
        _ensure_namespace(kube_admin, name, "production")
    decisions = await _judge(judge_settings, docs, which)
    assert len(decisions) == len(docs)
    for doc, decision in zip(docs, decisions, strict=True):
        denials = [r for r in decision.get("reasons", []) if r["effect"] == "deny"]
        assert decision["outcome"] in {"allow", "needs_approval"}, (doc["kind"], decision)
        assert denials == [], (doc["kind"], denials)
    workload = decisions[[d["kind"] for d in docs].index("Deployment")]
    # In production every write waits for a human, the gateway's own Deployment included.
    assert workload["outcome"] == "needs_approval"


async def test_the_judge_can_say_no_an_image_from_an_unapproved_registry_is_denied(
    judge_settings: Settings, kube_admin: Any
) -> None:
    _ensure_namespace(kube_admin, NAMESPACE, "production")
    docs = render("--set", "global.imageRegistry=docker.io")
    [decision] = await _judge(judge_settings, [only(docs, "Deployment")], "docker.io")
    assert decision["outcome"] == "deny"
    assert "approved_registries" in {r["rule"] for r in decision["reasons"]}


# -- the OPA sidecar as rendered, run for real -------------------------------------------


def _opa_args(docs: list[dict[str, Any]], mounts: dict[str, Path], port: int, diagnostic: int) -> list[str]:
    args = []
    for arg in containers(docs)["opa"]["args"]:
        arg = arg.replace("127.0.0.1:8181", f"127.0.0.1:{port}").replace(
            "0.0.0.0:8282", f"127.0.0.1:{diagnostic}"
        )
        for target, source in mounts.items():
            arg = arg.replace(target, str(source))
        args.append(arg)
    return args


def _write_config(docs: list[dict[str, Any]], directory: Path, replace: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-opa"))
    for key, text in config["data"].items():
        for old, new in replace.items():
            text = text.replace(old, new)
        (directory / key).write_text(text)


@contextlib.contextmanager
def _sidecar(docs: list[dict[str, Any]], tmp: Path, mounts: dict[str, Path]) -> Iterator[int]:
    port, diagnostic = free_port(), free_port()
    env = {e["name"]: e["value"] for e in containers(docs)["opa"]["env"]}
    process = ManagedProcess(
        [find_opa(), *_opa_args(docs, mounts, port, diagnostic)], log_path=tmp / "opa.log", env=env
    )
    process.start()
    try:
        yield diagnostic
    finally:
        process.stop()


def test_the_sidecar_activates_the_bundle_from_the_configmap(
    default: list[dict[str, Any]], bundle_path: Path, tmp_path: Path
) -> None:
    _write_config(default, tmp_path / "config", {})
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    shutil.copy(bundle_path, bundles / "gateway.tar.gz")
    with _sidecar(default, tmp_path, {"/config": tmp_path / "config", "/bundles": bundles}) as diagnostic:
        wait_until(
            lambda: answers_200(f"http://127.0.0.1:{diagnostic}/health?bundles"), timeout=30, what="opa"
        )


class _BundleServer(http.server.SimpleHTTPRequestHandler):
    token = "bundle-token"

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401)
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serving(directory: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_BundleServer, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _signing_key(tmp: Path) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp / "bundle.pem"
    pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return pem, public


def test_the_sidecar_polls_a_signed_bundle_and_refuses_one_it_cannot_verify(tmp_path: Path) -> None:
    pem, public = _signing_key(tmp_path)
    served = tmp_path / "served" / "bundles"
    served.mkdir(parents=True)
    build_bundle(
        ROOT / "rego", served / "gateway.tar.gz", revision="signed-1",
        extra_args=["--signing-key", str(pem), "--signing-alg", "RS256"],
    )  # fmt: skip
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text(_BundleServer.token)
    shipped_key = yaml.safe_load(HA.read_text())["opa"]["bundle"]["verification"]["publicKey"]
    with _serving(tmp_path / "served") as url:
        for key, activates in ((public, True), (shipped_key, False)):
            docs = render("-f", str(HA), "--set-string", f"opa.bundle.verification.publicKey={key}")
            workdir = tmp_path / ("ours" if activates else "example")
            mounts = {"/config": workdir / "config", "/credentials": credentials}
            replace = {"https://bundles.example.com": url, "/credentials": str(credentials)}
            _write_config(docs, workdir / "config", replace)
            with _sidecar(docs, workdir, mounts) as diagnostic:
                health = f"http://127.0.0.1:{diagnostic}/health?bundles"
                if activates:
                    wait_until(lambda h=health: answers_200(h), timeout=30, what="the signed bundle")
                else:
                    log = workdir / "opa.log"
                    wait_until(
                        lambda lg=log: "verification" in lg.read_text().lower(), timeout=30, what="a refusal"
                    )
                    assert not answers_200(health)
