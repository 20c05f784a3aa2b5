"""Every rule's samples against the real OPA serving the real bundle.

``rego/rules/<rule>/samples/allowed/*.json`` must not carry the rule's code anywhere in
the decision; ``samples/denied/*.json`` must, and a blocking rule's denied sample must
not be allowed. The rule's code and default mode come from its METADATA, read with
``opa inspect``, so the samples test the same annotations the reasons are built from.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.contracts import Decision
from gateway.local.opa import OpaServer, find_opa
from gateway.local.process import wait_until

pytestmark = pytest.mark.integration

REGO_DIR = Path(__file__).resolve().parents[2] / "rego"
RULES_DIR = REGO_DIR / "rules"
SAMPLES = sorted(RULES_DIR.glob("*/samples/*/*.json"))


@cache
def rule_metadata() -> dict[str, dict[str, Any]]:
    """custom METADATA of every annotated rule, by rule name (the package's last segment
    for rules under data.rules, the rule's own name for the gateway's own reasons)."""
    out = subprocess.run(
        [find_opa(), "inspect", "-a", "--format", "json", str(REGO_DIR)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, dict[str, Any]] = {}
    for entry in json.loads(out).get("annotations", []):
        custom = entry.get("annotations", {}).get("custom", {})
        path = [part["value"] for part in entry.get("path", [])]
        if "code" in custom:
            found[path[-1]] = custom
    return found


def decide(server: OpaServer, action: Any) -> dict[str, Any]:
    resp = httpx.post(f"{server.url}/v1/data/gateway/decision", json={"input": action}, timeout=10)
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()["result"]
    return result


def codes(decision: dict[str, Any]) -> set[str]:
    reported = decision["reasons"] + decision["warnings"] + decision["dryrun"]
    return {reason["code"] for reason in reported}


def test_every_rule_has_allowed_and_denied_samples() -> None:
    rules = {path.name for path in RULES_DIR.iterdir() if path.is_dir()}
    assert rules <= set(rule_metadata())
    # The data guard checks bundle data, not the action: it has no denied action to show.
    for rule in rules:
        kinds = {p.parent.name for p in SAMPLES if p.parts[-4] == rule}
        expected = {"allowed"} if rule == "policy_data" else {"allowed", "denied"}
        assert kinds == expected, rule


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parts[-4]}/{p.parent.name}/{p.stem}")
def test_sample_decision(opa_server: OpaServer, sample: Path) -> None:
    rule, expectation = sample.parts[-4], sample.parent.name
    meta = rule_metadata()[rule]
    decision = decide(opa_server, json.loads(sample.read_text()))
    Decision.model_validate(decision)
    for reason in decision["reasons"] + decision["warnings"] + decision["dryrun"]:
        reported = rule_metadata()[reason["rule"]]
        assert (reason["code"], reason["severity"]) == (reported["code"], reported["severity"]), reason
    if expectation == "allowed":
        assert meta["code"] not in codes(decision), decision
    else:
        assert meta["code"] in codes(decision), decision
        if meta["mode"] in {"deny", "needs_approval"}:
            assert decision["outcome"] != "allow", decision


def test_clean_write_is_allowed_with_an_empty_decision(opa_server: OpaServer) -> None:
    sample = RULES_DIR / "no_privileged" / "samples" / "allowed" / "deployment_unprivileged.json"
    decision = Decision.model_validate(decide(opa_server, json.loads(sample.read_text())))
    assert decision.outcome == "allow"
    assert decision.reasons == []
    assert decision.approval is None
    assert decision.obligations.redact == []
    assert decision.obligations.max_log_lines is None


def test_production_delete_asks_two_approvers_without_self_approval(opa_server: OpaServer) -> None:
    sample = RULES_DIR / "production_protection" / "samples" / "denied" / "delete_in_production.json"
    decision = Decision.model_validate(decide(opa_server, json.loads(sample.read_text())))
    assert decision.outcome == "needs_approval"
    assert decision.approval is not None
    assert decision.approval.min_approvals == 2
    assert decision.approval.allow_self_approval is False
    assert decision.approval.approver_groups


def test_approvals_from_two_others_allow_the_production_delete(opa_server: OpaServer) -> None:
    sample = RULES_DIR / "production_protection" / "samples" / "denied" / "delete_in_production.json"
    action = json.loads(sample.read_text())
    action["approvals"] = [
        {"subject": "alice", "groups": ["sre"], "approved_at": "2026-01-01T11:50:00Z", "reason": "mine"},
        {"subject": "bob", "groups": ["sre"], "approved_at": "2026-01-01T11:55:00Z", "reason": "ok"},
    ]
    waiting = Decision.model_validate(decide(opa_server, action))
    assert waiting.outcome == "needs_approval"
    assert any(r.message == "1 of 2 approvals; self-approval not allowed" for r in waiting.reasons)

    action["approvals"].append(
        {"subject": "carol", "groups": ["platform-admins"], "approved_at": "2026-01-01T11:58:00Z"}
    )
    assert Decision.model_validate(decide(opa_server, action)).outcome == "allow"


def test_secret_read_is_allowed_only_with_redaction(opa_server: OpaServer) -> None:
    sample = RULES_DIR / "secrets" / "samples" / "allowed" / "read_secret_is_redacted.json"
    decision = Decision.model_validate(decide(opa_server, json.loads(sample.read_text())))
    assert decision.outcome == "allow"
    redacted = {"/data", "/stringData", "/items/*/data", "/items/*/stringData"}
    assert set(decision.obligations.redact) == redacted


def test_log_read_carries_a_line_cap(opa_server: OpaServer) -> None:
    sample = RULES_DIR / "bounded_logs" / "samples" / "denied" / "logs_over_cap_warns.json"
    decision = Decision.model_validate(decide(opa_server, json.loads(sample.read_text())))
    assert decision.outcome == "allow"
    assert decision.obligations.max_log_lines == 500
    assert [w.code for w in decision.warnings] == ["OPS-LOGS-001"]


GARBAGE = [None, "delete everything", [1, 2], {}, {"version": 1, "tool": "k8s_get"}]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_input_is_denied_with_a_valid_document(opa_server: OpaServer, garbage: Any) -> None:
    decision = Decision.model_validate(decide(opa_server, garbage))
    assert decision.outcome == "deny"
    assert decision.reasons


def test_decision_log_masks_secret_values(bundle_path: Path, tmp_path: Path) -> None:
    """Defence in depth: even a Secret value that reached OPA stays out of its decision log."""
    log = tmp_path / "opa.log"
    server = OpaServer(bundle_path, log_path=log, decision_logs=True, extra_args=["--log-level=info"])
    server.start()
    try:
        action = json.loads((RULES_DIR / "secrets" / "samples" / "denied" / "apply_secret.json").read_text())
        action["object"]["data"] = {"password": "hunter2-object"}
        action["current"] = {**action["object"], "stringData": {"token": "hunter2-current"}}
        decide(server, action)
        wait_until(lambda: "decision_id" in log.read_text(), timeout=10, what="a decision log entry")
    finally:
        server.stop()
    text = log.read_text()
    assert "hunter2" not in text
    assert '"/input/object/data"' in text
