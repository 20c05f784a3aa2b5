"""Manifest parsing and validation: nothing here talks to a cluster."""

from __future__ import annotations

import hashlib
import json

import pytest

from gateway.errors import InvalidArguments, PayloadTooLarge
from gateway.kubernetes.manifests import parse_manifest

LIMITS = {"max_bytes": 10_000, "max_documents": 5}


def _cm(name: str, namespace: str = "dev") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"


def test_documents_are_parsed_in_order_with_the_digest_of_the_text() -> None:
    text = f"{_cm('a')}---\n{_cm('b')}\n---\n"
    manifest = parse_manifest(text, **LIMITS)
    assert [o["metadata"]["name"] for o in manifest.objects] == ["a", "b"]
    assert manifest.policy_args() == {
        "manifest_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "manifest_bytes": len(text.encode()),
        "documents": 2,
    }


def test_json_objects_and_arrays_are_accepted() -> None:
    one = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "dev"}}
    two = {**one, "metadata": {"name": "b", "namespace": "dev"}}
    assert len(parse_manifest(json.dumps(one), **LIMITS).objects) == 1
    assert len(parse_manifest(json.dumps([one, two]), **LIMITS).objects) == 2


def test_a_list_kind_is_flattened() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        f"- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}, namespace: dev}}}}\n" for i in range(3)
    )
    assert [o["metadata"]["name"] for o in parse_manifest(text, **LIMITS).objects] == ["c0", "c1", "c2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   \n", "empty"),
        ("a: [unclosed", "not valid YAML at line 1"),
        ("{not json", "not valid JSON"),
        ("- just\n- a list\n", "expected an object"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "'apiVersion' is required"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "'kind' is required"),
        ("apiVersion: v1\nkind: ConfigMap\n", "'metadata' with a 'name' is required"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n", "generateName cannot be used"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n", "not a valid object name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: Prod}\n", "not a valid name"),
        ("---\n---\n", "no objects"),
    ],
)
def test_malformed_manifests_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(InvalidArguments, match=message):
        parse_manifest(text, **LIMITS)


def test_yaml_aliases_are_refused_before_they_can_expand() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"
    with pytest.raises(InvalidArguments, match="aliases are not accepted"):
        parse_manifest(bomb, **LIMITS)


def test_the_same_object_twice_is_refused() -> None:
    with pytest.raises(InvalidArguments, match="more than once"):
        parse_manifest(f"{_cm('a')}---\n{_cm('a')}", **LIMITS)


def test_size_and_document_count_are_bounded() -> None:
    with pytest.raises(PayloadTooLarge, match="limit is 10000"):
        parse_manifest(_cm("a") + "# " + "x" * 10_000, **LIMITS)
    with pytest.raises(PayloadTooLarge, match="more than 5 objects"):
        parse_manifest("---\n".join(_cm(f"c{i}") for i in range(6)), **LIMITS)


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a: " + "[" * 5000 + "]" * 5000])
def test_deeply_nested_input_is_refused_not_crashed(text: str) -> None:
    with pytest.raises(InvalidArguments, match="nested too deeply"):
        parse_manifest(text, max_bytes=100_000, max_documents=5)
