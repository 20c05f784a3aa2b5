"""Each Kubernetes inverse against the living sandbox (controllers, scheduler, kwok): the
write tools journal what they changed, ``gateway_rollback`` undoes it, and the cluster is
compared object by object (without what the server sets) with how it was before.

Policy is not involved here (every call is allowed, as ``kube_support.ToolRunner`` does):
the judged path through OPA, the queue and the journal's tables is in test_k8s_undo_mcp.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fakes import InMemoryJournal
from kube_support import ALLOW, TESTER, ToolRunner, comparable, eventually
from kubernetes import client as k8s

from gateway.errors import Conflict, Drifted, RollbackRefused
from gateway.identity import CALLER
from gateway.rollback import RollbackTool
from gateway.tools import ExecutionContext, ToolRegistry

pytestmark = [pytest.mark.integration, pytest.mark.kube]

JSON = dict[str, Any]


class Journaled:
    """The Kubernetes tools and ``gateway_rollback`` over an in-memory journal, each call
    planned, executed and journaled as the pipeline does."""

    def __init__(self, runner: ToolRunner) -> None:
        self.specs = dict(runner.specs)
        self.journal = InMemoryJournal()
        registry = ToolRegistry()
        registry.extend(list(runner.specs.values()))
        rollback = RollbackTool(self.journal, registry).spec()
        self.specs[rollback.name] = rollback

    async def call(self, tool: str, **arguments: Any) -> tuple[str, Any]:
        spec = self.specs[tool]
        args = spec.args.model_validate(arguments)
        token = CALLER.set(TESTER)
        try:
            call = spec.plan(args, await spec.prepare(args), TESTER)
        finally:
            CALLER.reset(token)
        ctx = ExecutionContext(call=call, decision=ALLOW)
        result = await spec.execute(args, ctx)
        await self.journal.record(call, list(ctx.changes), ALLOW, complete=True)
        return call.id, result

    async def undo(self, action_id: str, *, force: bool = False) -> tuple[str, Any]:
        return await self.call("gateway_rollback", action_id=action_id, force=force)


@pytest.fixture
def journaled(kube_tools: ToolRunner) -> Journaled:
    return Journaled(kube_tools)


def _deployment(namespace: str, name: str = "web", image: str = "registry.example.com/web:1.0.0") -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _read(api: Any, kind: str, namespace: str, name: str) -> JSON | None:
    """The object as the admin reads it (JSON), or None when it does not exist."""
    read = {
        "Deployment": k8s.AppsV1Api(api).read_namespaced_deployment,
        "ConfigMap": k8s.CoreV1Api(api).read_namespaced_config_map,
        "Secret": k8s.CoreV1Api(api).read_namespaced_secret,
    }[kind]
    try:
        found = read(name, namespace)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(api.sanitize_for_serialization(found))


def _create_as_admin(api: Any, body: JSON) -> None:
    """Create ``body`` behind the gateway's back (another field manager: kubectl-style create)."""
    if body["kind"] == "Deployment":
        k8s.AppsV1Api(api).create_namespaced_deployment(body["metadata"]["namespace"], body)
    elif body["kind"] == "ConfigMap":
        k8s.CoreV1Api(api).create_namespaced_config_map(body["metadata"]["namespace"], body)
    else:
        k8s.CoreV1Api(api).create_namespaced_secret(body["metadata"]["namespace"], body)


async def test_rolling_back_an_apply_that_created_deletes_the_object(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    applied, _ = await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    assert _read(kube_admin, "Deployment", kube_namespace, "web") is not None

    _, result = await journaled.undo(applied)

    assert result["rolled_back"][0]["inverse"] == "delete"
    assert _read(kube_admin, "Deployment", kube_namespace, "web") is None


async def test_rolling_back_an_apply_that_changed_restores_the_object_and_drops_added_fields(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    # Created behind the gateway's back: its fields (defaults included) belong to another
    # manager, which the gateway's apply shares (same values) and adds to.
    _create_as_admin(kube_admin, _deployment(kube_namespace))
    before = comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {})
    changed = _deployment(kube_namespace)
    changed["metadata"]["annotations"] = {"team": "payments"}
    changed["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    changed["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "fast"}]

    applied, _ = await journaled.call("k8s_apply", manifest=yaml.safe_dump(changed))
    during = _read(kube_admin, "Deployment", kube_namespace, "web") or {}
    assert during["metadata"]["annotations"]["team"] == "payments"
    assert during["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}

    _, result = await journaled.undo(applied)

    assert result["rolled_back"][0]["inverse"] == "restore"
    after = comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {})
    assert after == before


async def test_rolling_back_a_second_apply_returns_to_the_first(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    first = comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {})
    second = _deployment(kube_namespace, image="registry.example.com/web:3.0.0")
    del second["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]  # a field it drops
    applied, _ = await journaled.call("k8s_apply", manifest=yaml.safe_dump(second))
    assert comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {}) != first

    await journaled.undo(applied)

    assert comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {}) == first


async def test_rolling_back_a_scale_restores_the_replicas_and_the_controller_follows(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    apps = k8s.AppsV1Api(kube_admin)
    scaled, _ = await journaled.call(
        "k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=4
    )
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 4

    _, result = await journaled.undo(scaled)

    assert result["rolled_back"][0]["inverse"] == "scaled"
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2

    async def two_replica_sets_pods() -> bool:
        replica_sets = apps.list_namespaced_replica_set(kube_namespace).items
        return sum(rs.spec.replicas or 0 for rs in replica_sets) == 2

    await eventually(two_replica_sets_pods, what="the controller scaled the replica set back to 2")


async def test_rolling_back_set_resources_restores_them_and_removes_what_it_added(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    before = comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {})
    patched, _ = await journaled.call(
        "k8s_set_resources", kind="deploy", name="web", namespace=kube_namespace, container="web",
        requests={"cpu": "200m", "memory": "64Mi"}, limits={"cpu": "1"},
    )  # fmt: skip
    resources = (_read(kube_admin, "Deployment", kube_namespace, "web") or {})["spec"]["template"]["spec"][
        "containers"
    ][0]["resources"]
    assert resources["limits"] == {"cpu": "1", "memory": "128Mi"}

    await journaled.undo(patched)

    assert comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {}) == before


async def test_rolling_back_a_restart_removes_the_annotation_and_rolls_out_again(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    before = comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {})
    restarted, _ = await journaled.call("k8s_restart", kind="deploy", name="web", namespace=kube_namespace)
    generation = (_read(kube_admin, "Deployment", kube_namespace, "web") or {})["metadata"]["generation"]

    _, result = await journaled.undo(restarted)

    assert "rolls the pods out again" in result["rolled_back"][0]["note"]
    live = _read(kube_admin, "Deployment", kube_namespace, "web") or {}
    assert comparable(live) == before
    assert live["metadata"]["generation"] > generation  # the template changed again: another rollout


async def test_rolling_back_a_delete_recreates_the_object_with_a_new_uid(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": kube_namespace, "labels": {"app": "web"}},
        "data": {"mode": "fast"},
    }
    _create_as_admin(kube_admin, config)
    before = _read(kube_admin, "ConfigMap", kube_namespace, "settings") or {}
    deleted, _ = await journaled.call(
        "k8s_delete", kind="configmap", name="settings", namespace=kube_namespace
    )
    assert _read(kube_admin, "ConfigMap", kube_namespace, "settings") is None

    _, result = await journaled.undo(deleted)

    after = _read(kube_admin, "ConfigMap", kube_namespace, "settings") or {}
    assert comparable(after) == comparable(before)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert result["rolled_back"][0]["uid"] == after["metadata"]["uid"]
    assert "new uid" in result["rolled_back"][0]["note"]


async def test_a_multi_document_apply_rolls_back_as_one_call(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    before = comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {})
    meta = {"name": "web-config", "namespace": kube_namespace}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "1"}}
    manifest = yaml.safe_dump_all(
        [config, _deployment(kube_namespace, image="registry.example.com/web:4.0.0")]
    )
    applied, _ = await journaled.call("k8s_apply", manifest=manifest)

    rollback, result = await journaled.undo(applied)

    assert [d["inverse"] for d in result["rolled_back"]] == ["restore", "delete"]  # last change first
    assert _read(kube_admin, "ConfigMap", kube_namespace, "web-config") is None
    assert comparable(_read(kube_admin, "Deployment", kube_namespace, "web") or {}) == before
    assert len(journaled.journal.records[rollback].changes) == 2


async def test_a_drifted_object_is_refused_with_what_changed_unless_forced(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    scaled, _ = await journaled.call(
        "k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=3
    )
    apps = k8s.AppsV1Api(kube_admin)
    apps.patch_namespaced_deployment("web", kube_namespace, {"spec": {"replicas": 5}})  # someone else

    with pytest.raises(Drifted) as refused:
        await journaled.undo(scaled)
    assert "spec.replicas: 3 -> 5" in str(refused.value)
    assert "force=true" in str(refused.value)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 5

    await journaled.undo(scaled, force=True)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2


async def test_status_churn_is_not_drift(journaled: Journaled, kube_admin: Any, kube_namespace: str) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    scaled, _ = await journaled.call(
        "k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=3
    )
    apps = k8s.AppsV1Api(kube_admin)

    async def status_caught_up() -> bool:
        return apps.read_namespaced_deployment("web", kube_namespace).status.replicas == 3

    await eventually(status_caught_up, what="the controllers report 3 replicas")
    await journaled.undo(scaled)  # status and revision moved; the spec did not
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2


async def test_a_rollback_can_itself_be_rolled_back(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    scaled, _ = await journaled.call(
        "k8s_scale", kind="deploy", name="web", namespace=kube_namespace, replicas=4
    )
    rollback, _ = await journaled.undo(scaled)
    apps = k8s.AppsV1Api(kube_admin)
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 2

    with pytest.raises(RollbackRefused, match=rf"already rolled back .* roll back {rollback} to redo it"):
        await journaled.undo(scaled)
    await journaled.undo(rollback)

    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 4


async def test_a_secret_is_restored_without_its_values_in_any_result(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": kube_namespace},
              "type": "Opaque", "stringData": {"password": "first-value-7b1e"}}  # fmt: skip
    _create_as_admin(kube_admin, secret)
    before = comparable(_read(kube_admin, "Secret", kube_namespace, "db") or {})
    changed = {**secret, "stringData": {"password": "second-value-3c9d"}}
    applied, applied_result = await journaled.call("k8s_apply", manifest=yaml.safe_dump(changed))

    _, result = await journaled.undo(applied)

    assert comparable(_read(kube_admin, "Secret", kube_namespace, "db") or {}) == before
    for shown in (applied_result, result):
        assert "first-value" not in str(shown)
        assert "second-value" not in str(shown)


async def test_an_object_deleted_since_the_write_has_nothing_to_roll_back(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    applied, _ = await journaled.call("k8s_apply", manifest=yaml.safe_dump(_deployment(kube_namespace)))
    k8s.AppsV1Api(kube_admin).delete_namespaced_deployment("web", kube_namespace)

    with pytest.raises(Conflict, match=r"no longer exists .* nothing to roll back"):
        await journaled.undo(applied, force=True)


async def test_a_recreated_object_is_not_replaced_by_the_rollback_of_its_delete(
    journaled: Journaled, kube_admin: Any, kube_namespace: str
) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": kube_namespace},
              "data": {"v": "1"}}  # fmt: skip
    _create_as_admin(kube_admin, config)
    deleted, _ = await journaled.call("k8s_delete", kind="configmap", name="c", namespace=kube_namespace)
    _create_as_admin(kube_admin, {**config, "data": {"v": "someone else's"}})

    with pytest.raises(Conflict, match="created again since the gateway deleted it"):
        await journaled.undo(deleted, force=True)
    assert (_read(kube_admin, "ConfigMap", kube_namespace, "c") or {})["data"] == {"v": "someone else's"}
