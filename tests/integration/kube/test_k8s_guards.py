"""What executes is what was judged, without false conflicts, with the controllers running.

A parked write is guarded by the target's uid, generation (its spec), labels and
annotations: controllers rewriting its status while it waits must not fail it; someone
changing its spec must. ``k8s_scale`` goes through ``/scale``; ``k8s_restart`` reports
the rollout it started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kube_support import ToolRunner, eventually
from kubernetes import client as k8s

from gateway.contracts import PlannedCall
from gateway.errors import Conflict, Forbidden, InvalidArguments
from gateway.kubernetes.tools import open_backend
from gateway.local.kwok import SIMULATE_ANNOTATION
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

GROUP = "guards.policy-gateway.dev"


def _deployment(name: str, replicas: int = 2, *, simulate: str | None = None) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if simulate:
        template_meta["annotations"] = {SIMULATE_ANNOTATION: simulate}
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.27", "resources": {"requests": {"cpu": "10m"}}}
                    ]
                },
            },
        },
    }


async def _rolled_out(apps: Any, namespace: str, name: str, replicas: int) -> Any:
    async def ready() -> Any:
        live = apps.read_namespaced_deployment(name, namespace)
        status = live.status
        current = status.observed_generation == live.metadata.generation
        return live if current and (status.ready_replicas or 0) == replicas else None

    return await eventually(ready, what=f"deployment {name} rolled out with {replicas} ready")


async def _status_moved_on(apps: Any, namespace: str, name: str, since: str) -> Any:
    """Wait until a controller has rewritten the deployment's status since ``since``."""

    async def moved() -> Any:
        live = apps.read_namespaced_deployment(name, namespace)
        return live if live.metadata.resource_version != since else None

    return await eventually(moved, what=f"a status update of {name}")


async def test_status_churn_while_a_scale_is_parked_does_not_fail_it(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    apps, core = k8s.AppsV1Api(kube_admin), k8s.CoreV1Api(kube_admin)
    apps.create_namespaced_deployment(kube_namespace, _deployment("web"))
    await _rolled_out(apps, kube_namespace, "web", 2)
    call = await kube_tools.plan("k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=3)
    judged = call.actions[0].current
    assert judged is not None

    # A pod dies; the ReplicaSet controller replaces it and the status is rewritten.
    pod = core.list_namespaced_pod(kube_namespace, label_selector="app=web").items[0]
    core.delete_namespaced_pod(pod.metadata.name, kube_namespace)
    live = await _status_moved_on(apps, kube_namespace, "web", judged["metadata"]["resourceVersion"])
    assert live.metadata.generation == judged["metadata"]["generation"]  # nobody touched the spec

    result = await kube_tools.execute(call)

    assert (result["scaled"]["previous_replicas"], result["scaled"]["replicas"]) == (2, 3)
    await _rolled_out(apps, kube_namespace, "web", 3)


async def test_a_spec_change_while_a_scale_is_parked_fails_it(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    apps = k8s.AppsV1Api(kube_admin)
    apps.create_namespaced_deployment(kube_namespace, _deployment("web"))
    await _rolled_out(apps, kube_namespace, "web", 2)
    call = await kube_tools.plan("k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=5)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}
    apps.patch_namespaced_deployment("web", kube_namespace, patch)

    with pytest.raises(Conflict, match=r"Deployment .*/web changed after policy judged it: its spec changed "
                       r"\(generation 1 -> 2\); nothing was written"):  # fmt: skip
        await kube_tools.execute(call)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2


async def _parked_over_crash_loop_churn(
    tools: ToolRunner, apps: Any, namespace: str, tool: str
) -> tuple[PlannedCall, dict[str, Any]]:
    """``tool`` on a crash-looping Deployment ``worker``, planned, then left until the
    crashes have rewritten the Deployment's status (Ready goes False)."""
    apps.create_namespaced_deployment(namespace, _deployment("worker", 1, simulate="crash-loop"))
    await _rolled_out(apps, namespace, "worker", 1)
    call = await tools.plan(tool, kind="deploy", name="worker", namespace=namespace)
    judged = call.actions[0].current
    assert judged is not None
    await _status_moved_on(apps, namespace, "worker", judged["metadata"]["resourceVersion"])
    return call, judged


async def test_a_parked_restart_survives_crash_loop_churn_and_reports_its_rollout(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    apps = k8s.AppsV1Api(kube_admin)
    call, _ = await _parked_over_crash_loop_churn(kube_tools, apps, kube_namespace, "k8s_restart")

    result = await kube_tools.execute(call)

    rollout = result["rollout"]
    assert rollout["observed"] is True
    assert (rollout["generation"], rollout["revision"]) == (2, "2")
    replica_set = apps.read_namespaced_replica_set(rollout["new_replica_set"], kube_namespace)
    assert replica_set.metadata.owner_references[0].name == "worker"
    template = replica_set.spec.template.metadata.annotations
    assert template["kubectl.kubernetes.io/restartedAt"] == rollout["restarted_at"]


async def test_a_parked_delete_survives_status_churn(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    apps = k8s.AppsV1Api(kube_admin)
    call, judged = await _parked_over_crash_loop_churn(kube_tools, apps, kube_namespace, "k8s_delete")

    result = await kube_tools.execute(call)

    assert result["deleted"]["uid"] == judged["metadata"]["uid"]
    names = [d.metadata.name for d in apps.list_namespaced_deployment(kube_namespace).items]
    assert "worker" not in names


async def test_scaling_needs_only_the_scale_subresource(
    restricted_settings: Settings, kube_admin: Any, kube_namespace: str
) -> None:
    apps, rbac = k8s.AppsV1Api(kube_admin), k8s.RbacAuthorizationV1Api(kube_admin)
    apps.create_namespaced_deployment(kube_namespace, _deployment("web", 1))
    subject = {"kind": "User", "name": "restricted-user", "apiGroup": "rbac.authorization.k8s.io"}
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "scaler"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        {"metadata": {"name": "scaler"}, "subjects": [subject],
         "roleRef": {"kind": "Role", "name": "scaler", "apiGroup": "rbac.authorization.k8s.io"}},
    )  # fmt: skip
    namespace_reader = f"ns-reader-{kube_namespace}"
    rbac.create_cluster_role(
        {"metadata": {"name": namespace_reader},
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]}
    )  # fmt: skip
    role_ref = {"kind": "ClusterRole", "name": namespace_reader, "apiGroup": "rbac.authorization.k8s.io"}
    rbac.create_cluster_role_binding(
        {"metadata": {"name": namespace_reader}, "subjects": [subject], "roleRef": role_ref}
    )

    async with open_backend(restricted_settings) as specs:
        tools = ToolRunner(specs)
        await tools.call("k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=2)
        with pytest.raises(Forbidden, match='cannot patch resource "deployments"'):
            await tools.plan("k8s_restart", kind="deploy", name="web", namespace=kube_namespace)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2


def _crd(plural: str, kind: str, *, scale: bool) -> dict[str, Any]:
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer"}, "colour": {"type": "string"}},
            },
            "status": {"type": "object", "properties": {"size": {"type": "integer"}}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "subresources": subresources,
                 "schema": {"openAPIV3Schema": schema}},
            ],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def custom_kinds(kube_admin: Any) -> Iterator[None]:
    """``Widget`` (with a scale subresource on ``.spec.size``) and ``Gadget`` (without)."""
    ext = k8s.ApiextensionsV1Api(kube_admin)
    crds = [_crd("widgets", "Widget", scale=True), _crd("gadgets", "Gadget", scale=False)]
    for crd in crds:
        ext.create_custom_resource_definition(crd)
    for crd in crds:
        name = crd["metadata"]["name"]

        def established(name: str = name) -> bool:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        while not established():
            time.sleep(0.1)
    try:
        yield
    finally:
        for crd in crds:
            ext.delete_custom_resource_definition(crd["metadata"]["name"])


async def test_a_custom_resource_with_a_scale_subresource_is_scaled_through_it(
    custom_kinds: None, kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    custom = k8s.CustomObjectsApi(kube_admin)
    widget = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 1, "colour": "blue"}}  # fmt: skip
    custom.create_namespaced_custom_object(GROUP, "v1", kube_namespace, "widgets", widget)

    call = await kube_tools.plan("k8s_scale", kind=f"widgets.{GROUP}", name="w", namespace=kube_namespace,
                                 replicas=4)  # fmt: skip
    action = call.actions[0]
    assert action.current is not None
    assert action.object is not None
    # Policy sees the object as the scale subresource will leave it: the CRD's own field.
    assert (action.current["spec"]["size"], action.object["spec"]["size"]) == (1, 4)
    assert action.object["spec"]["colour"] == "blue"
    # A status write in between (as the widget's controller would) does not fail it.
    custom.patch_namespaced_custom_object_status(
        GROUP, "v1", kube_namespace, "widgets", "w", {"status": {"size": 1}}
    )

    result = await kube_tools.execute(call)

    assert (result["scaled"]["previous_replicas"], result["scaled"]["replicas"]) == (1, 4)
    live = custom.get_namespaced_custom_object(GROUP, "v1", kube_namespace, "widgets", "w")
    assert live["spec"] == {"size": 4, "colour": "blue"}


@pytest.mark.parametrize(("kind", "plural"), [(f"gadgets.{GROUP}", "gadgets"), ("configmap", "configmaps")])
async def test_a_kind_without_a_scale_subresource_is_refused_clearly(
    custom_kinds: None, kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str, kind: str, plural: str
) -> None:
    k8s.CoreV1Api(kube_admin).create_namespaced_config_map(kube_namespace, {"metadata": {"name": "g"}})
    gadget = {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 1}}
    k8s.CustomObjectsApi(kube_admin).create_namespaced_custom_object(
        GROUP, "v1", kube_namespace, "gadgets", gadget
    )
    with pytest.raises(InvalidArguments, match=f"cannot be scaled: {plural} has no scale subresource"):
        await kube_tools.plan("k8s_scale", kind=kind, name="g", namespace=kube_namespace, replicas=2)


def _manifest(namespace: str, replicas: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}, labels: {{app: web}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: app, image: "nginx:1.27", resources: {{requests: {{cpu: 10m}}}}}}
"""


async def test_a_parked_apply_survives_status_churn_but_not_a_spec_change(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    apps, core = k8s.AppsV1Api(kube_admin), k8s.CoreV1Api(kube_admin)
    await kube_tools.call("k8s_apply", manifest=_manifest(kube_namespace, 2))
    await _rolled_out(apps, kube_namespace, "web", 2)
    call = await kube_tools.plan("k8s_apply", manifest=_manifest(kube_namespace, 3))
    judged = call.actions[0].current
    assert judged is not None
    pod = core.list_namespaced_pod(kube_namespace, label_selector="app=web").items[0]
    core.delete_namespaced_pod(pod.metadata.name, kube_namespace)
    await _status_moved_on(apps, kube_namespace, "web", judged["metadata"]["resourceVersion"])

    await kube_tools.execute(call)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 3

    again = await kube_tools.plan("k8s_apply", manifest=_manifest(kube_namespace, 4))
    # Someone else scales it (a spec change the judged before-image does not show).
    apps.patch_namespaced_deployment_scale("web", kube_namespace, {"spec": {"replicas": 1}})
    with pytest.raises(Conflict, match=r"Deployment .*/web changed after policy judged it: its spec changed"):
        await kube_tools.execute(again)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 1


async def test_a_parked_create_fails_when_someone_created_the_object_meanwhile(
    kube_tools: ToolRunner, kube_admin: Any, kube_namespace: str
) -> None:
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: {kube_namespace}}}\n"
    manifest += "data: {judged: 'yes'}\n"
    call = await kube_tools.plan("k8s_apply", manifest=manifest)
    assert call.actions[0].current is None
    k8s.CoreV1Api(kube_admin).create_namespaced_config_map(kube_namespace, {"metadata": {"name": "c"}})

    with pytest.raises(Conflict, match=r"ConfigMap .*/c was created by someone else after policy judged"):
        await kube_tools.execute(call)
    assert k8s.CoreV1Api(kube_admin).read_namespaced_config_map("c", kube_namespace).data is None
