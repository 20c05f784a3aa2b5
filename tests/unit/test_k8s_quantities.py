"""Quantities in the after-image keep the caller's spelling when the server's canonical form
denotes the same amount, and only then."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.kubernetes.quantities import amount, as_written


def _deployment(requests: dict[str, Any], *, name: str = "c") -> dict[str, Any]:
    container = {"name": name, "image": "r/x:1", "resources": {"requests": requests}}
    return {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [container]}}}}


def _requests(obj: dict[str, Any]) -> dict[str, Any]:
    requests: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    return requests


def test_the_callers_spelling_replaces_the_canonical_form_of_the_same_amount() -> None:
    server = _deployment({"cpu": "500m", "memory": "1536Mi", "nvidia.com/gpu": "1"})
    written = _deployment({"cpu": "0.5", "memory": "1.5Gi", "nvidia.com/gpu": 1})
    before = copy.deepcopy(server)
    assert _requests(as_written(server, written)) == {"cpu": "0.5", "memory": "1.5Gi", "nvidia.com/gpu": "1"}
    assert server == before  # the dry-run answer itself is left as it was


def test_a_different_amount_or_another_container_keeps_what_the_server_says() -> None:
    server = _deployment({"cpu": "500m", "memory": "1G"})
    assert _requests(as_written(server, _deployment({"cpu": "0.25", "memory": "1000000000"}))) == {
        "cpu": "500m",
        "memory": "1000000000",
    }
    assert _requests(as_written(server, _deployment({"cpu": "0.5"}, name="other"))) == {
        "cpu": "500m",
        "memory": "1G",
    }


@pytest.mark.parametrize(
    ("server", "written"),
    [
        (
            {"kind": "Pod", "spec": {"containers": [
                {"name": "c", "resources": {"limits": {"cpu": "2"}}}]}},
            {"kind": "Pod", "spec": {"containers": [
                {"name": "c", "resources": {"limits": {"cpu": "2000m"}}}]}},
        ),
        (
            {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [
                {"name": "c", "resources": {"limits": {"cpu": "2"}}}]}}}}}},
            {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [
                {"name": "c", "resources": {"limits": {"cpu": "2000m"}}}]}}}}}},
        ),
    ],
    ids=["pod", "cronjob-init-container"],
)  # fmt: skip
def test_every_pod_spec_shape_is_followed(server: dict[str, Any], written: dict[str, Any]) -> None:
    assert "2000m" in str(as_written(server, written))


def test_objects_without_pods_and_malformed_quantities_are_left_alone() -> None:
    config_map = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert as_written(config_map, config_map) is config_map
    assert _requests(as_written(_deployment({"cpu": "1"}), _deployment({"cpu": "lots"}))) == {"cpu": "1"}
    with pytest.raises(ValueError, match="not a quantity"):
        amount("lots")
