"""Many clusters behind one gateway: two real API servers (``sandbox`` and ``prod-eu``),
a server that is down, one that accepts connections and never answers, and a context
whose credentials the server rejects.

What a platform engineer relies on: the same call reaches the cluster it names; policy
knows which cluster is production (the project's own data makes ``prod-*`` production,
whatever the namespace labels say); a broken cluster fails its own calls, quickly, and
nothing else; no message carries a credential; and an approved call runs on the cluster
policy judged, even after the gateway restarts with another default.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_support import (
    Endpoint,
    ToolRunner,
    approve_and_wait,
    connected,
    reply_body,
    reply_text,
    write_kubeconfig,
)
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from typer.testing import CliRunner

from gateway.cli import app
from gateway.contracts import Principal
from gateway.errors import BackendUnavailable, Forbidden
from gateway.kubernetes.tools import open_backend
from gateway.local.kube import KubeApiServer
from gateway.local.opa import OpaServer
from gateway.local.process import free_port
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

BOB = Principal(subject="bob", groups=("sre",), transport="cli", authenticated=True)
BAD_TOKEN = "not-a-token-the-server-knows-" + "x" * 20
CONTEXTS = ("sandbox", "prod-eu", "down", "silent", "bad-credentials")


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever answers: a hung server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.fixture
def kubeconfig(
    tmp_path: Path, quiet_seeded: KubeApiServer, quiet_prod_eu: KubeApiServer, silent_port: int
) -> Path:
    sandbox, prod = quiet_seeded, quiet_prod_eu
    return write_kubeconfig(
        tmp_path / "kubeconfig",
        {
            "sandbox": Endpoint(sandbox.url, sandbox.ca_file, sandbox.admin_token),
            "prod-eu": Endpoint(prod.url, prod.ca_file, prod.admin_token),
            "down": Endpoint(f"https://127.0.0.1:{free_port()}", sandbox.ca_file, sandbox.admin_token),
            "silent": Endpoint(f"https://127.0.0.1:{silent_port}", sandbox.ca_file, sandbox.admin_token),
            "bad-credentials": Endpoint(sandbox.url, sandbox.ca_file, BAD_TOKEN),
            # In the kubeconfig, not allowed: the gateway must not reveal that it exists.
            "admin-hidden": Endpoint(prod.url, prod.ca_file, prod.admin_token),
        },
        current="sandbox",
    )


@pytest.fixture
def settings(kubeconfig: Path, tmp_path: Path) -> Settings:
    return Settings(
        kubeconfig=kubeconfig,
        kube_contexts=CONTEXTS,
        # A down server fails at once; a hung one within the connect timeout, not the read one.
        kube_connect_timeout_seconds=0.5,
        kube_timeout_seconds=30,
        db_path=tmp_path / "gateway.db",
        subject="alice",
        groups=("sre",),
    )


@pytest.fixture
def shop(quiet_seeded: KubeApiServer, quiet_prod_eu: KubeApiServer) -> Iterator[str]:
    """The same namespace (labelled development) and Deployment ``shop`` (2 replicas) in
    both clusters, each with a ConfigMap saying which cluster it is in."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    apis = []
    for server, cluster in ((quiet_seeded, "sandbox"), (quiet_prod_eu, "prod-eu")):
        api = k8s_config.new_client_from_config(
            str(server.kubeconfig_path), context=cluster, persist_config=False
        )
        apis.append(api)
        core = k8s.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name, "labels": {"environment": "development"}}})
        core.create_namespaced_config_map(
            name, {"metadata": {"name": "whoami"}, "data": {"cluster": cluster}}
        )
        k8s.AppsV1Api(api).create_namespaced_deployment(name, _deployment(name))
    try:
        yield name
    finally:
        for api in apis:
            k8s.CoreV1Api(api).delete_namespace(name)
            api.close()


def _deployment(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{
                        "name": "web",
                        "image": "registry.example.com/shop/web:2.1.0",
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "200m", "memory": "256Mi"}},
                    }],
                },
            },
        },
    }  # fmt: skip


def _replicas(server: KubeApiServer, context: str, namespace: str) -> int:
    with k8s_config.new_client_from_config(str(server.kubeconfig_path), context=context) as api:
        return int(k8s.AppsV1Api(api).read_namespaced_deployment("shop", namespace).spec.replicas)


# -- the backend alone -------------------------------------------------------------------


async def test_the_same_call_reaches_the_cluster_it_names(settings: Settings, shop: str) -> None:
    async with open_backend(settings) as specs:
        tools = ToolRunner(specs)
        for cluster in ("sandbox", "prod-eu"):
            call = await tools.plan("k8s_get", kind="cm", name="whoami", namespace=shop, cluster=cluster)
            assert call.actions[0].target.cluster == cluster
            assert (await tools.execute(call))["data"] == {"cluster": cluster}
        # Without the argument: the default context, named in the call as judged.
        call = await tools.plan("k8s_get", kind="cm", name="whoami", namespace=shop)
        assert (call.call_args["cluster"], call.actions[0].target.cluster) == ("sandbox", "sandbox")


async def test_a_broken_cluster_fails_only_its_own_calls_and_quickly(settings: Settings, shop: str) -> None:
    async with open_backend(settings) as specs:
        tools = ToolRunner(specs)

        async def timed(cluster: str) -> tuple[str, Any, float]:
            started = time.monotonic()
            try:
                outcome: Any = await tools.call("k8s_list", kind="deploy", namespace=shop, cluster=cluster)
            except Exception as exc:
                outcome = exc
            return cluster, outcome, time.monotonic() - started

        results = {c: (o, t) for c, o, t in await asyncio.gather(*(timed(c) for c in CONTEXTS))}
    for cluster in ("sandbox", "prod-eu"):
        listed, _ = results[cluster]
        assert (listed["cluster"], [d["metadata"]["name"] for d in listed["items"]]) == (cluster, ["shop"])
    down, _ = results["down"]
    assert isinstance(down, BackendUnavailable)
    assert str(down).startswith("the Kubernetes API of cluster 'down' at https://127.0.0.1:")
    assert str(down).endswith("is unreachable (connection failed)")
    silent, waited = results["silent"]
    assert isinstance(silent, BackendUnavailable)
    assert "of cluster 'silent'" in str(silent)
    assert "did not answer in time" in str(silent)
    # Bounded by the connect timeout (twice: one retry), far from the 30 s read timeout.
    assert waited < 10
    refused, _ = results["bad-credentials"]
    assert isinstance(refused, Forbidden)
    assert "cluster 'bad-credentials'" in str(refused)
    assert "rejected the gateway's credentials" in str(refused)
    for outcome, _ in results.values():
        assert BAD_TOKEN not in str(outcome)


async def test_k8s_clusters_lists_every_allowed_context_and_no_credential(
    settings: Settings, quiet_seeded: KubeApiServer, quiet_prod_eu: KubeApiServer
) -> None:
    async with open_backend(settings) as specs:
        listing = await ToolRunner(specs).call("k8s_clusters")
    by_name = {c["name"]: c for c in listing["clusters"]}
    assert list(by_name) == list(CONTEXTS)
    assert by_name["sandbox"]["default"] is True
    assert (by_name["prod-eu"]["server"], by_name["prod-eu"]["reachable"]) == (quiet_prod_eu.url, True)
    assert by_name["prod-eu"]["version"] == "v1.30.14"
    assert (by_name["down"]["reachable"], by_name["silent"]["reachable"]) == (False, False)
    assert by_name["bad-credentials"]["reachable"] is True
    assert "rejected the gateway's credentials" in by_name["bad-credentials"]["error"]
    text = json.dumps(listing)
    for secret in (BAD_TOKEN, quiet_seeded.admin_token, quiet_prod_eu.admin_token, "certificate-authority"):
        assert secret not in text
    assert "admin-hidden" not in text


async def test_an_evicted_client_still_serves_the_call_holding_it(settings: Settings, shop: str) -> None:
    one = settings.model_copy(update={"kube_max_clients": 1})
    async with open_backend(one) as specs:
        tools = ToolRunner(specs)
        call = await tools.plan("k8s_get", kind="cm", name="whoami", namespace=shop, cluster="prod-eu")
        await tools.plan("k8s_get", kind="cm", name="whoami", namespace=shop, cluster="sandbox")
        # prod-eu's client was closed when sandbox's was built; executing builds it again.
        assert (await tools.execute(call))["data"] == {"cluster": "prod-eu"}


# -- through the gateway, with the project's policy --------------------------------------


@pytest.fixture
def judged(settings: Settings, opa_server: OpaServer) -> Settings:
    return settings.model_copy(update={"opa_url": opa_server.url, "opa_timeout_seconds": 5.0})


async def test_production_by_policy_data_parks_the_write_the_other_cluster_allows(
    judged: Settings, shop: str, quiet_seeded: KubeApiServer, quiet_prod_eu: KubeApiServer
) -> None:
    scale = {"kind": "deploy", "name": "shop", "namespace": shop, "replicas": 3}
    async with connected(judged) as mcp:
        allowed = await mcp.call_tool("k8s_scale", {**scale, "cluster": "sandbox"})
        parked = await mcp.call_tool("k8s_scale", {**scale, "cluster": "prod-eu"})
        listing = reply_body(await mcp.call_tool("k8s_clusters", {}))
    assert not allowed.is_error, reply_text(allowed)
    assert reply_body(allowed)["cluster"] == "sandbox"
    assert reply_body(parked)["outcome"] == "needs_approval", reply_text(parked)
    assert "writes to production (policy data makes cluster 'prod-eu' production)" in reply_text(parked)
    assert (_replicas(quiet_seeded, "sandbox", shop), _replicas(quiet_prod_eu, "prod-eu", shop)) == (3, 2)
    environments = {c["name"]: c["environment"] for c in listing["clusters"]}
    assert environments == {name: "production" if name == "prod-eu" else None for name in CONTEXTS}


async def test_an_unknown_or_hidden_cluster_is_refused_alike_and_nothing_else_is_affected(
    judged: Settings, shop: str
) -> None:
    async with connected(judged) as mcp:
        replies = [
            await mcp.call_tool(
                "k8s_get", {"kind": "cm", "name": "whoami", "namespace": shop, "cluster": name}
            )
            for name in ("admin-hidden", "no-such-cluster", "prod-eu\u0000; rm -rf /")
        ]
        fine = await mcp.call_tool(
            "k8s_get", {"kind": "cm", "name": "whoami", "namespace": shop, "cluster": "prod-eu"}
        )
    messages = {reply_text(r) for r in replies}
    assert all(r.is_error for r in replies)
    assert messages == {
        "invalid arguments for k8s_get: cluster: Value error, not a cluster the gateway may use; "
        f"use one of: {', '.join(CONTEXTS)}"
    }
    assert not fine.is_error
    assert reply_body(fine)["data"] == {"cluster": "prod-eu"}


async def test_a_parked_call_runs_on_the_cluster_policy_judged_after_a_restart_with_another_default(
    judged: Settings, shop: str, quiet_seeded: KubeApiServer, quiet_prod_eu: KubeApiServer
) -> None:
    # Proposed without a cluster while prod-eu is the default: parked for approval.
    prod_default = judged.model_copy(update={"kube_context": "prod-eu"})
    async with connected(prod_default) as mcp:
        scale = {"kind": "deploy", "name": "shop", "namespace": shop, "replicas": 4}
        parked = reply_body(await mcp.call_tool("k8s_scale", scale))
    assert parked["outcome"] == "needs_approval"

    # Another gateway process, whose default is the sandbox, approves and executes it.
    async with connected(judged) as mcp:
        state = await approve_and_wait(mcp, judged, parked["action_id"], BOB)
    assert state["state"] == "succeeded", state
    assert (_replicas(quiet_prod_eu, "prod-eu", shop), _replicas(quiet_seeded, "sandbox", shop)) == (4, 2)


async def test_the_queue_shows_the_cluster_of_each_parked_action(
    judged: Settings, shop: str, quiet_seeded: KubeApiServer
) -> None:
    with k8s_config.new_client_from_config(str(quiet_seeded.kubeconfig_path), context="sandbox") as api:
        k8s.CoreV1Api(api).patch_namespace(shop, {"metadata": {"labels": {"environment": "production"}}})
    ids = {}
    async with connected(judged) as mcp:
        for cluster in ("sandbox", "prod-eu"):
            restart = {"kind": "deploy", "name": "shop", "namespace": shop, "cluster": cluster}
            reply = reply_body(await mcp.call_tool("k8s_restart", restart))
            assert reply["outcome"] == "needs_approval", reply
            ids[cluster] = reply["action_id"]
    local = ["--local", "--db", str(judged.db_path)]
    table = await _cli("queue", "list", *local)
    rows = {line[:8]: re.split(r"\s{2,}", line) for line in table.splitlines()[1:]}
    for cluster, action_id in ids.items():
        assert rows[action_id[:8]][2:4] == ["k8s_restart", cluster]
    listed = json.loads(await _cli("queue", "list", *local, "--json"))
    assert {r["id"]: r["target"]["cluster"] for r in listed} == {v: k for k, v in ids.items()}
    shown = await _cli("queue", "show", ids["prod-eu"], *local)
    assert "Cluster      prod-eu\n" in shown
    assert f"Target       prod-eu/{shop} Deployment shop [development]" in shown


async def _cli(*args: str) -> str:
    """``gateway ...`` as an approver at a terminal (the CLI runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


# -- in a pod ----------------------------------------------------------------------------


@pytest.fixture
def service_account_mount(quiet_seeded: KubeApiServer, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """What Kubernetes mounts into a pod, for a real service account of the quiet API server
    allowed to read namespaces and Deployments: its token (from the TokenRequest API), the
    CA and the namespace."""
    name = f"gateway-{uuid.uuid4().hex[:6]}"
    api = k8s_config.new_client_from_config(str(quiet_seeded.kubeconfig_path), context="sandbox")
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account("default", {"metadata": {"name": name}})
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
    ]})  # fmt: skip
    rbac.create_cluster_role_binding({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        name, "default", {"spec": {"expirationSeconds": 3600}}
    )
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "token").write_text(token.status.token)
    (mount / "ca.crt").write_bytes(quiet_seeded.ca_file.read_bytes())
    (mount / "namespace").write_text("default")
    try:
        yield mount, token.status.token
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)
        core.delete_namespaced_service_account(name, "default")
        api.close()


async def test_in_a_pod_without_a_kubeconfig_the_service_account_is_the_default_cluster(
    quiet_seeded: KubeApiServer, service_account_mount: tuple[Path, str], tmp_path: Path
) -> None:
    mount, token = service_account_mount
    settings = Settings(
        KUBERNETES_SERVICE_HOST="127.0.0.1",
        KUBERNETES_SERVICE_PORT=str(quiet_seeded.port),
        kube_service_account_dir=mount,
        kube_in_cluster_context="home",
        db_path=tmp_path / "gateway.db",
    )
    async with open_backend(settings) as specs:
        tools = ToolRunner(specs)
        listing = await tools.call("k8s_clusters")
        deployments = await tools.call("k8s_list", kind="deploy", namespace="dev")
        with pytest.raises(Forbidden) as refused:
            await tools.plan("k8s_scale", kind="deploy", name="web", namespace="dev", replicas=3)
    [home] = listing["clusters"]
    assert home == {
        "name": "home", "default": True, "server": quiet_seeded.url, "namespace": "default",
        "in_cluster": True, "environment": None, "reachable": True, "version": "v1.30.14", "error": None,
    }  # fmt: skip
    assert deployments["cluster"] == "home"
    assert "web" in {d["metadata"]["name"] for d in deployments["items"]}
    # The gateway acts as the pod's service account, which may read and not write.
    assert "system:serviceaccount:default:gateway-" in str(refused.value)
    assert token not in json.dumps(listing) + str(refused.value)
