"""Kubernetes client errors become short gateway errors, never a raw ApiException dump."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from gateway.errors import BackendUnavailable, Conflict, Forbidden, Invalid, NotFound, RateLimited
from gateway.kubernetes.failures import cause, translate

SERVER = "https://127.0.0.1:6443"


def _api_error(status: int, message: str | None = "boom", reason: str = "Reason") -> ApiException:
    exc = ApiException(status=status, reason=reason)
    body = {"kind": "Status", "message": message} if message is not None else {"kind": "Status"}
    exc.body = json.dumps(body)
    exc.headers = {"Audit-Id": "abc", "Authorization": "Bearer nope"}
    return exc


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFound), (409, Conflict), (403, Forbidden), (401, Forbidden), (422, Invalid), (400, Invalid),
     (429, RateLimited), (500, BackendUnavailable), (503, BackendUnavailable)],
)  # fmt: skip
def test_statuses_map_to_the_gateway_family(status: int, error: type[Exception]) -> None:
    assert isinstance(translate(_api_error(status), server=SERVER), error)


def test_the_message_is_the_api_message_without_headers_or_body() -> None:
    error = translate(_api_error(404, 'deployments.apps "web" not found'), server=SERVER)
    assert str(error) == 'deployments.apps "web" not found'
    assert "Audit-Id" not in str(error)
    assert "Bearer" not in str(error)


def test_long_or_odd_messages_are_cleaned_and_bounded() -> None:
    error = translate(_api_error(422, "bad\x00value " + "x" * 2000), server=SERVER)
    assert "\x00" not in str(error)
    assert len(str(error)) <= 500


def test_a_body_without_message_falls_back_to_the_status() -> None:
    assert str(translate(_api_error(404, None, reason="Not Found"), server=SERVER)) == "HTTP 404 Not Found"


def test_transport_failures_are_backend_unavailable_naming_the_server() -> None:
    timeout = translate(urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), server=SERVER)
    refused = translate(ConnectionRefusedError(111, "refused"), server=SERVER)
    assert isinstance(timeout, BackendUnavailable)
    assert "did not answer in time" in str(timeout)
    assert isinstance(refused, BackendUnavailable)
    assert SERVER in str(refused)


# Messages as kube-apiserver v1.30 writes them (captured from the sandbox's server).
_INVALID = 'Deployment.apps "web" is invalid: '
_SELECTOR = (
    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"
    '"app":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
)
_JOB_TEMPLATE = (
    'Job.batch "j" is invalid: spec.template: Invalid value: core.PodTemplateSpec{'
    'ObjectMeta:v1.ObjectMeta{Name:"", CreationTimestamp:time.Date(1, time.January, 1, 0, 0, '
    '0, 0, time.UTC), DeletionTimestamp:<nil>, Labels:map[string]string{"job-name":"j"}, '
    "OwnerReferences:[]v1.OwnerReference(nil)}, Spec:core.PodSpec{Containers:[]core.Container{"
    'core.Container{Name:"c", Image:"busybox:2", Command:[]string(nil)}}, '
    "TerminationGracePeriodSeconds:(*int64)(0x32f9c1dafa58)}}: field is immutable"
)
_TYPED_PATCH = "failed to create typed patch object (t/web; apps/v1, Kind=Deployment): "
_CONVERT = (
    "failed to convert new object (t/web; apps/v1, Kind=Deployment) to proper version: "
    "unable to convert unstructured object to apps/v1, Kind=Deployment: "
)
_QUANTITY = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_UNMARSHAL = (
    'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
    "string into Go struct field DeploymentSpec.spec.replicas of type int32"
)
_NEGATIVE = "spec.replicas: Invalid value: -1: must be greater than or equal to 0"


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        (_INVALID + _SELECTOR, _INVALID + "spec.selector: field is immutable"),
        (_JOB_TEMPLATE, 'Job.batch "j" is invalid: spec.template: field is immutable'),
        (
            _TYPED_PATCH + ".spec.replicas: expected numeric (int or float), got string",
            "Deployment t/web: .spec.replicas: expected numeric (int or float), got string",
        ),
        (
            _CONVERT + _QUANTITY,
            "Deployment t/web: a resource quantity is malformed: write quantities like "
            "'250m', '1.5', '512Mi' or '1Gi'",
        ),
        (_UNMARSHAL, "Deployment: spec.replicas: expected int32, got string"),
        (_INVALID + _NEGATIVE, _INVALID + _NEGATIVE),
    ],
    ids=["selector-immutable", "job-template", "typed-patch", "quantity", "unmarshal", "plain-value"],
)
def test_api_messages_are_shortened_to_their_cause(raw: str, short: str) -> None:
    assert cause(raw) == short


def test_a_request_the_server_cannot_decode_is_invalid_not_a_server_failure() -> None:
    error = translate(_api_error(500, _TYPED_PATCH + ".spec.bogus: field not declared"), server=SERVER)
    assert isinstance(error, Invalid)
    assert str(error) == "Deployment t/web: .spec.bogus: field not declared"
