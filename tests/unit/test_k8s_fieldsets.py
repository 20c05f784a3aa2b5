"""The manifests that undo the gateway's server-side apply, from managedFields as the API
server writes them (``fieldsV1``: ``f:`` keys, ``k:`` list items by merge key, ``v:`` set
members, ``.`` the node itself)."""

from __future__ import annotations

import copy
import json
from typing import Any

from gateway.kubernetes.fieldsets import (
    owned_fields,
    recreate_manifest,
    restore_manifest,
    secret_restore_patch,
)

JSON = dict[str, Any]
GW = "policy-gateway"


def managed(manager: str, fields: JSON, operation: str = "Apply", subresource: str | None = None) -> JSON:
    entry: JSON = {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    return entry


def key(**fields: Any) -> str:
    return "k:" + json.dumps(fields, separators=(",", ":"))


def deployment(
    image: str, *, managers: list[JSON], extra_env: bool = False, limit: str | None = "256Mi"
) -> JSON:
    container: JSON = {"name": "web", "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}]}
    if limit:
        container["resources"] = {"limits": {"memory": limit}}
    if extra_env:
        container["env"] = [{"name": "MODE", "value": "fast"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "dev",
            "uid": "u-1",
            "resourceVersion": "7",
            "generation": 2,
            "labels": {"app": "web"},
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "finalizers": ["example.com/keep"],
            "managedFields": managers,
        },
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "template": {"spec": {"containers": [container]}},
        },
        "status": {"replicas": 2},
    }


CONTAINER = key(name="web")


def containers(fields: JSON) -> JSON:
    """A field set owning ``fields`` of container ``web``."""
    return {"f:template": {"f:spec": {"f:containers": {CONTAINER: {".": {}, **fields}}}}}


GW_BEFORE = {
    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        **containers({"f:name": {}, "f:image": {}, "f:resources": {"f:limits": {"f:memory": {}}}}),
    },
}
MODE = {".": {}, key(name="MODE"): {".": {}, "f:name": {}, "f:value": {}}}
GW_AFTER = {
    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:revisionHistoryLimit": {},
        **containers({"f:name": {}, "f:image": {}, "f:env": MODE}),
    },
}
PORT = {".": {}, key(containerPort=8080, protocol="TCP"): {".": {}, "f:containerPort": {}}}
OTHER = managed("kubectl", {"f:spec": containers({"f:ports": PORT})}, "Update")


def test_the_restore_puts_back_what_the_gateway_owned_and_leaves_out_what_it_added() -> None:
    before = deployment("web:1", managers=[managed(GW, GW_BEFORE), OTHER])
    after = deployment("web:2", managers=[managed(GW, GW_AFTER), OTHER], extra_env=True, limit=None)
    after["spec"]["revisionHistoryLimit"] = 3

    body = restore_manifest(before, after, GW)

    assert body == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "dev", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,  # owned only after, existing before: its old value back
            # resources: dropped by the apply, back; env: added by it, left out
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "web:1", "resources": {"limits": {"memory": "256Mi"}}}
                    ]
                }
            },
        },
    }


def test_only_apply_entries_of_the_gateway_count() -> None:
    obj = deployment("web:1", managers=[
        managed(GW, {"f:spec": {"f:replicas": {}}}),
        managed(GW, {"f:spec": {"f:paused": {}}}, operation="Update"),
        managed(GW, {"f:spec": {"f:minReadySeconds": {}}}, subresource="scale"),
        managed("someone", {"f:spec": {"f:revisionHistoryLimit": {}}}),
    ])  # fmt: skip
    assert owned_fields(obj, GW) == {"f:spec": {"f:replicas": {}}}


def test_an_object_the_gateway_never_owned_restores_to_its_name_alone() -> None:
    before = deployment("web:1", managers=[OTHER])
    after = deployment(
        "web:1", managers=[managed(GW, {"f:metadata": {"f:annotations": {"f:team": {}}}}), OTHER]
    )
    assert restore_manifest(before, after, GW) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "dev"},
    }


def test_set_members_and_positions_are_extracted() -> None:
    before = {
        "apiVersion": "v1",
        "kind": "Thing",
        "metadata": {"name": "t", "managedFields": [managed(GW, {
            "f:spec": {"f:tags": {'v:"a"': {}, 'v:"c"': {}}, "f:steps": {"i:1": {"f:run": {}}}}})]},
        "spec": {"tags": ["a", "b", "c"], "steps": [{"run": "x", "other": 1}, {"run": "y", "other": 2}]},
    }  # fmt: skip
    assert restore_manifest(before, before, GW)["spec"] == {"tags": ["a", "c"], "steps": [{"run": "y"}]}


def test_the_restore_never_carries_controller_annotations() -> None:
    fields = {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}, "f:team": {}}}}
    before = deployment("web:1", managers=[managed(GW, fields)])
    before["metadata"]["annotations"]["team"] = "a"
    assert restore_manifest(before, before, GW)["metadata"]["annotations"] == {"team": "a"}


def test_a_recreated_object_has_no_server_set_fields() -> None:
    before = deployment("web:1", managers=[managed(GW, GW_BEFORE)])
    original = copy.deepcopy(before)

    body = recreate_manifest(before)

    assert body["metadata"] == {
        "name": "web",
        "namespace": "dev",
        "labels": {"app": "web"},
        "finalizers": ["example.com/keep"],
    }
    assert "status" not in body
    assert body["spec"] == before["spec"]
    assert before == original


def test_a_secret_written_through_string_data_is_restored_key_by_key() -> None:
    fields = {"f:stringData": {"f:password": {}, "f:added": {}}, "f:metadata": {"f:labels": {"f:team": {}}}}
    before = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "labels": {"app": "db"},
            "managedFields": [managed("kubectl", {"f:data": {}})],
        },
        "data": {"password": "b2xk", "kept": "eA=="},
    }
    after = {**before, "metadata": {**before["metadata"], "managedFields": [managed(GW, fields)]}}

    assert secret_restore_patch(before, after, GW) == {
        "data": {"added": None, "password": "b2xk"},
        "metadata": {"labels": {"team": None}},
    }
