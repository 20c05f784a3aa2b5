"""Argument models reject bad names before anything is sent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.kubernetes.args import GetArgs, ListArgs, LogsArgs, ScaleArgs, SetResourcesArgs


@pytest.mark.parametrize("name", ["web", "web-1", "a.b.c", "system:controller:job-controller", "x" * 253])
def test_valid_object_names_pass(name: str) -> None:
    assert GetArgs(kind="deploy", name=name, namespace="dev").name == name


@pytest.mark.parametrize("name", ["Web", "-web", "web-", "a_b", "a/b", "..", "x" * 254, ""])
def test_invalid_object_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        GetArgs(kind="deploy", name=name, namespace="dev")


@pytest.mark.parametrize("namespace", ["Dev", "dev.prod", "a" * 64, "-dev"])
def test_namespaces_are_dns_labels(namespace: str) -> None:
    with pytest.raises(ValidationError):
        ListArgs(kind="po", namespace=namespace)


@pytest.mark.parametrize("kind", ["deploy", "Deployment", "certificates.cert-manager.io", "po"])
def test_kind_names_pass(kind: str) -> None:
    assert ListArgs(kind=kind).kind == kind


@pytest.mark.parametrize("kind", ["deploy ments", "../secrets", "", "a" * 121, "1deploy"])
def test_malformed_kind_names_are_refused(kind: str) -> None:
    with pytest.raises(ValidationError):
        ListArgs(kind=kind)


def test_list_limit_is_bounded() -> None:
    assert ListArgs(kind="po").limit == 100
    with pytest.raises(ValidationError):
        ListArgs(kind="po", limit=501)


def test_the_error_message_does_not_echo_the_rejected_value() -> None:
    with pytest.raises(ValidationError) as caught:
        GetArgs(kind="deploy", name="Sup3rSecretToken", namespace="dev")
    assert "Sup3rSecretToken" not in str(caught.value.errors(include_input=False))


def test_scale_replicas_must_be_non_negative() -> None:
    with pytest.raises(ValidationError):
        ScaleArgs(kind="deploy", name="web", namespace="dev", replicas=-1)


def test_set_resources_needs_requests_or_limits_with_valid_quantities() -> None:
    ok = SetResourcesArgs(
        kind="deploy",
        name="web",
        namespace="dev",
        container="app",
        limits={"cpu": "500m", "nvidia.com/gpu": "1"},
    )
    assert ok.limits == {"cpu": "500m", "nvidia.com/gpu": "1"}
    with pytest.raises(ValidationError, match="give 'requests', 'limits' or both"):
        SetResourcesArgs(kind="deploy", name="web", namespace="dev", container="app")
    with pytest.raises(ValidationError, match="not a quantity"):
        SetResourcesArgs(kind="deploy", name="web", namespace="dev", container="app", limits={"cpu": "lots"})
    with pytest.raises(ValidationError, match="not a resource name"):
        SetResourcesArgs(kind="deploy", name="web", namespace="dev", container="app", limits={"CPU!": "1"})


def test_log_lines_are_bounded() -> None:
    with pytest.raises(ValidationError):
        LogsArgs(pod="p", namespace="dev", tail_lines=0)
    with pytest.raises(ValidationError):
        LogsArgs(pod="p", namespace="dev", tail_lines=10_001)
