"""Write tools against the living sandbox: dry-run, server-side apply, conflicts, RBAC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kube_support import ToolRunner
from kubernetes import client as k8s

from gateway.errors import Conflict, Forbidden, Invalid, InvalidArguments, NotFound
from gateway.kubernetes.secrets import digest
from gateway.kubernetes.tools import open_backend
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]


def _deployment(namespace: str, name: str = "web", replicas: int = 2, image: str = "nginx:1.27") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: {image}
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
      - name: sidecar
        image: busybox:1.36
        resources: {{requests: {{cpu: 10m}}, limits: {{cpu: 20m}}}}
"""


def _apps(admin: Any) -> Any:
    return k8s.AppsV1Api(admin)


async def test_prepare_dry_runs_and_persists_nothing(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    call = await kube_tools.plan("k8s_apply", manifest=_deployment(kube_namespace))

    action = call.actions[0]
    assert action.current is None
    assert action.object is not None
    # Server defaults are in the after-image: policy sees what would be stored.
    assert action.object["spec"]["strategy"]["type"] == "RollingUpdate"
    assert action.object["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "managedFields" not in action.object["metadata"]
    assert (action.target.kind, action.target.namespace, action.target.environment) == (
        "Deployment", kube_namespace, "development",
    )  # fmt: skip
    with pytest.raises(k8s.ApiException) as missing:
        _apps(kube_admin).read_namespaced_deployment("web", kube_namespace)
    assert missing.value.status == 404


async def test_apply_is_server_side_with_the_gateway_field_manager(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    result = await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))

    assert result["applied"][0]["created"] is True
    live = _apps(kube_admin).read_namespaced_deployment("web", kube_namespace)
    managers = {(f.manager, f.operation) for f in live.metadata.managed_fields}
    assert ("policy-gateway", "Apply") in managers
    again = await kube_tools.plan("k8s_apply", manifest=_deployment(kube_namespace, replicas=4))
    assert again.actions[0].current is not None
    assert again.actions[0].current["spec"]["replicas"] == 2
    assert again.actions[0].object is not None
    assert again.actions[0].object["spec"]["replicas"] == 4


async def test_field_owned_by_another_manager_is_a_conflict(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))
    _apps(kube_admin).patch_namespaced_deployment(
        "web", kube_namespace, {"spec": {"replicas": 5}}, field_manager="hpa-like-controller"
    )

    with pytest.raises(Conflict, match=r"conflict with \"hpa-like-controller\".*\.spec\.replicas"):
        await kube_tools.plan("k8s_apply", manifest=_deployment(kube_namespace, replicas=2))
    assert _apps(kube_admin).read_namespaced_deployment("web", kube_namespace).spec.replicas == 5


async def test_multi_document_apply_prepares_all_before_applying_any(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    config = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {kube_namespace}}}\n"
    broken = (
        f"apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: broken, namespace: {kube_namespace}}}\nspec: {{}}\n"
    )

    with pytest.raises(Invalid, match="selector"):
        await kube_tools.plan("k8s_apply", manifest=f"{config}---\n{broken}")
    stored = k8s.CoreV1Api(kube_admin).list_namespaced_config_map(kube_namespace).items
    assert "settings" not in {cm.metadata.name for cm in stored}

    call = await kube_tools.plan("k8s_apply", manifest=f"{config}---\n{_deployment(kube_namespace)}")
    assert [a.target.kind for a in call.actions] == ["ConfigMap", "Deployment"]
    assert {a.args["documents"] for a in call.actions} == {2}
    result = await kube_tools.execute(call)
    assert [(o["kind"], o["name"]) for o in result["applied"]] == [
        ("ConfigMap", "settings"),
        ("Deployment", "web"),
    ]


async def test_secret_values_reach_policy_only_as_digests(
    kube_tools: ToolRunner, kube_namespace: str
) -> None:
    manifest = f"""
apiVersion: v1
kind: Secret
metadata: {{name: db, namespace: {kube_namespace}}}
stringData: {{password: correct-horse-battery-staple}}
data: {{token: c2VjcmV0LXRva2Vu}}
"""
    call = await kube_tools.plan("k8s_apply", manifest=manifest)
    action = call.actions[0]
    assert action.object is not None
    # The server folds stringData into data; both are digests of the plain value.
    assert action.object["data"] == {
        "password": digest(b"correct-horse-battery-staple"),
        "token": digest(b"secret-token"),
    }
    assert set(action.args) == {"manifest_sha256", "manifest_bytes", "documents"}
    policy_input = json.dumps([a.as_input() for a in call.actions])
    assert "correct-horse" not in policy_input
    assert "c2VjcmV0LXRva2Vu" not in policy_input

    await kube_tools.execute(call)
    again = await kube_tools.plan("k8s_apply", manifest=manifest)
    assert again.actions[0].current is not None
    assert again.actions[0].current["data"]["password"] == digest(b"correct-horse-battery-staple")


async def test_scale_judges_the_patched_workload_and_writes_it(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))
    call = await kube_tools.plan("k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=7)

    action = call.actions[0]
    assert action.current is not None
    assert action.object is not None
    assert (action.current["spec"]["replicas"], action.object["spec"]["replicas"]) == (2, 7)
    assert _apps(kube_admin).read_namespaced_deployment("web", kube_namespace).spec.replicas == 2

    await kube_tools.execute(call)
    assert _apps(kube_admin).read_namespaced_deployment("web", kube_namespace).spec.replicas == 7


async def test_a_workload_changed_since_it_was_judged_is_not_patched(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))
    call = await kube_tools.plan("k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=9)
    _apps(kube_admin).patch_namespaced_deployment("web", kube_namespace, {"metadata": {"labels": {"x": "y"}}})

    with pytest.raises(
        Conflict, match=r"Deployment .*/web changed after policy judged it: its labels changed \(x\); nothing"
    ):
        await kube_tools.execute(call)
    assert _apps(kube_admin).read_namespaced_deployment("web", kube_namespace).spec.replicas == 2


async def test_restart_writes_the_timestamp_policy_saw(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))
    call = await kube_tools.plan("k8s_restart", kind="deployment", name="web", namespace=kube_namespace)
    assert call.actions[0].object is not None
    judged = call.actions[0].object["spec"]["template"]["metadata"]["annotations"][
        "kubectl.kubernetes.io/restartedAt"
    ]

    await kube_tools.execute(call)
    live = _apps(kube_admin).read_namespaced_deployment("web", kube_namespace)
    assert live.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == judged


async def test_set_resources_changes_only_the_named_container(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))
    call = await kube_tools.plan(
        "k8s_set_resources", kind="deploy", name="web", namespace=kube_namespace, container="app",
        limits={"cpu": "500m", "memory": "256Mi"},
    )  # fmt: skip
    assert call.actions[0].object is not None
    containers = {
        c["name"]: c["resources"] for c in call.actions[0].object["spec"]["template"]["spec"]["containers"]
    }
    assert containers["app"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert containers["sidecar"] == {"requests": {"cpu": "10m"}, "limits": {"cpu": "20m"}}

    await kube_tools.execute(call)
    live = _apps(kube_admin).read_namespaced_deployment("web", kube_namespace)
    assert live.spec.template.spec.containers[0].resources.limits == {"cpu": "500m", "memory": "256Mi"}


async def test_set_resources_on_an_unknown_container_names_the_containers(
    kube_tools: ToolRunner, kube_namespace: str
) -> None:
    await kube_tools.call("k8s_apply", manifest=_deployment(kube_namespace))
    with pytest.raises(InvalidArguments, match=r"no container 'db' \(containers: app, sidecar\)"):
        await kube_tools.plan(
            "k8s_set_resources", kind="deploy", name="web", namespace=kube_namespace, container="db",
            requests={"cpu": "1"},
        )  # fmt: skip


async def test_delete_removes_only_the_object_that_was_judged(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "old"}})
    call = await kube_tools.plan("k8s_delete", kind="configmap", name="old", namespace=kube_namespace)
    assert call.actions[0].effect == "delete"
    assert core.read_namespaced_config_map("old", kube_namespace) is not None  # the dry-run kept it
    core.delete_namespaced_config_map("old", kube_namespace)
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "old"}, "data": {"new": "object"}}
    )

    with pytest.raises(
        Conflict, match=r"ConfigMap .*/old changed after policy judged it: it was deleted and created again"
    ):
        await kube_tools.execute(call)
    assert core.read_namespaced_config_map("old", kube_namespace).data == {"new": "object"}

    fresh = await kube_tools.plan("k8s_delete", kind="cm", name="old", namespace=kube_namespace)
    result = await kube_tools.execute(fresh)
    assert result["deleted"]["name"] == "old"
    with pytest.raises(NotFound):
        await kube_tools.plan("k8s_delete", kind="cm", name="old", namespace=kube_namespace)


async def test_objects_in_a_namespace_the_manifest_creates_are_refused_with_the_order_to_use(
    kube_tools: ToolRunner,
) -> None:
    manifest = "apiVersion: v1\nkind: Namespace\nmetadata: {name: brand-new}\n---\n" + _deployment(
        "brand-new"
    )
    with pytest.raises(InvalidArguments, match="apply the Namespace on its own first"):
        await kube_tools.plan("k8s_apply", manifest=manifest)


async def test_restricted_identity_is_forbidden_by_rbac(
    restricted_settings: Settings, kube_admin: Any, kube_namespace: str
) -> None:
    # The restricted user may read this namespace (and get namespaces) but write nothing.
    # (A role of its own rather than `view`: the test states exactly what it grants.)
    rbac = k8s.RbacAuthorizationV1Api(kube_admin)
    subject = {"kind": "User", "name": "restricted-user", "apiGroup": "rbac.authorization.k8s.io"}
    reader = f"reader-{kube_namespace}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": reader},
            "rules": [
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
                {
                    "apiGroups": ["", "apps"],
                    "resources": ["configmaps", "deployments"],
                    "verbs": ["get", "list"],
                },
            ],
        }
    )
    role_ref = {"kind": "ClusterRole", "name": reader, "apiGroup": "rbac.authorization.k8s.io"}
    rbac.create_namespaced_role_binding(
        kube_namespace, {"metadata": {"name": "reader"}, "roleRef": role_ref, "subjects": [subject]}
    )
    rbac.create_cluster_role_binding(
        {"metadata": {"name": reader}, "roleRef": role_ref, "subjects": [subject]}
    )

    async with open_backend(restricted_settings) as specs:
        tools = ToolRunner(specs)
        listed = await tools.call("k8s_list", kind="cm", namespace=kube_namespace)
        with pytest.raises(Forbidden, match='User "restricted-user" cannot patch resource "deployments"'):
            await tools.plan("k8s_apply", manifest=_deployment(kube_namespace))
        with pytest.raises(Forbidden, match='cannot list resource "secrets"'):
            await tools.call("k8s_list", kind="secrets", namespace=kube_namespace)
    assert listed["kind"] == "ConfigMap"
