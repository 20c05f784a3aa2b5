"""The OPA fixture serves the real bundle and answers on the decision path."""

from __future__ import annotations

import httpx
import pytest

from gateway.local.opa import OpaServer

pytestmark = pytest.mark.integration


def test_opa_reports_the_bundle_activated(opa_server: OpaServer) -> None:
    assert httpx.get(f"{opa_server.url}/health?bundles", timeout=5).status_code == 200


def test_decision_path_answers_with_a_decision_document(opa_server: OpaServer) -> None:
    action = {
        "version": 1,
        "tool": "k8s_get",
        "backend": "kubernetes",
        "operation": "get",
        "effect": "read",
        "target": {"namespace": "dev", "kind": "Pod", "name": "web"},
        "principal": {
            "subject": "alice",
            "groups": [],
            "transport": "stdio",
            "authenticated": True,
        },
    }
    resp = httpx.post(
        f"{opa_server.url}/v1/data/gateway/decision?provenance",
        json={"input": action},
        timeout=5,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["result"]["outcome"] in {"allow", "deny", "needs_approval"}
    # `opa run --bundle PATH` names the bundle by its path; the revision is what matters.
    revisions = {b["revision"] for b in body["provenance"]["bundles"].values()}
    assert revisions == {"test"}
