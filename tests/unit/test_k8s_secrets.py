"""Secret values become digests before policy sees them; other objects only lose noise."""

from __future__ import annotations

import base64
import copy
import hashlib

from gateway.kubernetes.images import policy_image, read_view
from gateway.kubernetes.secrets import LAST_APPLIED

PLAIN = "s3cret-value"
B64 = base64.b64encode(PLAIN.encode()).decode()
DIGEST = "sha256:" + hashlib.sha256(PLAIN.encode()).hexdigest()


def _secret() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {LAST_APPLIED: f'{{"stringData":{{"pw":"{PLAIN}"}}}}', "team": "payments"},
        },
        "data": {"pw": B64},
        "stringData": {"pw2": PLAIN},
    }


def test_data_and_string_data_digest_to_the_same_value() -> None:
    image = policy_image(_secret())
    assert image is not None
    assert image["data"] == {"pw": DIGEST}
    assert image["stringData"] == {"pw2": DIGEST}


def test_last_applied_annotation_is_digested_and_other_annotations_kept() -> None:
    image = policy_image(_secret())
    assert image is not None
    annotations = image["metadata"]["annotations"]
    assert annotations[LAST_APPLIED].startswith("sha256:")
    assert annotations["team"] == "payments"
    assert PLAIN not in str(image)
    assert B64 not in str(image)


def test_managed_fields_are_stripped_and_the_input_is_not_modified() -> None:
    original = _secret()
    image = policy_image(original)
    assert image is not None
    assert "managedFields" not in image["metadata"]
    assert original["data"] == {"pw": B64}
    assert original["metadata"]["managedFields"] == [{"manager": "kubectl"}]


def test_objects_that_are_not_secrets_keep_their_data() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert policy_image(config) == config
    assert policy_image(None) is None


def test_invalid_base64_is_digested_as_given() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"k": "not base64!"}}
    image = policy_image(secret)
    assert image is not None
    assert image["data"]["k"] == "sha256:" + hashlib.sha256(b"not base64!").hexdigest()


def test_read_view_of_a_list_item_restores_kind_and_hides_last_applied_only() -> None:
    item = _secret()
    del item["kind"], item["apiVersion"]
    view = read_view(item, kind="Secret", api_version="v1")
    assert (view["apiVersion"], view["kind"]) == ("v1", "Secret")
    assert view["metadata"]["annotations"][LAST_APPLIED].startswith("sha256:")
    # Values stay for the decision's redaction obligation (tested with the pipeline).
    assert view["data"] == {"pw": B64}


def test_views_never_modify_the_object_they_were_made_from() -> None:
    original = _secret()
    snapshot = copy.deepcopy(original)
    read_view(original, kind="Secret", api_version="v1")
    policy_image(original)
    assert original == snapshot
