"""Kubernetes client errors become short gateway errors, never a raw ApiException dump."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from gateway.errors import BackendUnavailable, Conflict, Forbidden, Invalid, NotFound, RateLimited
from gateway.kubernetes.failures import translate

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
