package gateway_test

import data.gateway
import data.lib_test

_clean := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))

_prod_delete := lib_test.with_field(lib_test.k8s_delete("Deployment", "web"), "/target/environment", "production")

_approval(subject, groups, at) := {"subject": subject, "groups": groups, "approved_at": at, "reason": "ok"}

_with_approvals(action, approvals) := lib_test.with_field(action, "/approvals", approvals)

_codes(reasons) := {r.code | some r in reasons}

test_allow_clean_write if {
	d := gateway.decision with input as _clean
	d == {
		"outcome": "allow",
		"reasons": [],
		"obligations": {"redact": [], "max_log_lines": null, "untrusted": []},
		"warnings": [],
		"dryrun": [],
	}
}

test_deny_wins_over_needs_approval if {
	privileged := object.union(lib_test.good_container("app"), {"securityContext": {"privileged": true}})
	write := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([privileged])))
	inp := lib_test.with_field(write, "/target/environment", "production")
	d := gateway.decision with input as inp
	d.outcome == "deny"
	_codes(d.reasons) == {"K8S-PRIV-001", "OPS-PROD-001"}
	d.reasons[0].effect == "deny"
	d.approval.min_approvals == 1
}

test_deny_delete_in_production_needs_two_approvals if {
	d := gateway.decision with input as _prod_delete
	d.outcome == "needs_approval"
	_codes(d.reasons) == {"OPS-DESTRUCT-001", "OPS-PROD-001"}
	d.approval == {
		"min_approvals": 2,
		"approver_groups": ["sre", "platform-admins"],
		"ttl_seconds": 3600,
		"allow_self_approval": false,
	}
}

test_allow_delete_in_production_with_two_approvals if {
	approvals := [
		_approval("bob", ["sre"], "2026-01-01T11:30:00Z"),
		_approval("carol", ["platform-admins"], "2026-01-01T11:59:00Z"),
	]
	d := gateway.decision with input as _with_approvals(_prod_delete, approvals)
	d.outcome == "allow"
	d.approval.min_approvals == 2
}

test_deny_one_of_two_approvals_keeps_waiting if {
	approvals := [_approval("bob", ["sre"], "2026-01-01T11:30:00Z")]
	d := gateway.decision with input as _with_approvals(_prod_delete, approvals)
	d.outcome == "needs_approval"
	some r in d.reasons
	r.code == "GW-APPROVAL-001"
	r.rule == "approval_quorum"
	r.message == "1 of 2 approvals"
}

test_deny_self_approval_not_counted if {
	approvals := [_approval("alice", ["sre"], "2026-01-01T11:30:00Z"), _approval("bob", ["sre"], "2026-01-01T11:30:00Z")]
	d := gateway.decision with input as _with_approvals(_prod_delete, approvals)
	d.outcome == "needs_approval"
	some r in d.reasons
	r.message == "1 of 2 approvals; self-approval not allowed"
}

test_deny_same_approver_twice_counts_once if {
	approvals := [_approval("bob", ["sre"], "2026-01-01T11:30:00Z"), _approval("bob", ["sre"], "2026-01-01T11:40:00Z")]
	gateway.decision.outcome == "needs_approval" with input as _with_approvals(_prod_delete, approvals)
}

test_deny_approver_outside_approver_groups if {
	approvals := [
		_approval("bob", ["sre"], "2026-01-01T11:30:00Z"),
		_approval("dave", ["developers"], "2026-01-01T11:30:00Z"),
	]
	d := gateway.decision with input as _with_approvals(_prod_delete, approvals)
	d.outcome == "needs_approval"
	some r in d.reasons
	r.message == "1 of 2 approvals; approvers must be in sre, platform-admins"
}

test_deny_expired_future_and_malformed_approvals if {
	approvals := [
		_approval("bob", ["sre"], "2026-01-01T10:59:59Z"),
		_approval("carol", ["sre"], "2026-01-01T12:00:01Z"),
		_approval("erin", ["sre"], "yesterday"),
	]
	d := gateway.decision with input as _with_approvals(_prod_delete, approvals)
	d.outcome == "needs_approval"
	some r in d.reasons
	r.message == "0 of 2 approvals; approvals expire after 3600s or had an invalid time"
}

test_deny_approvals_without_time_do_not_count if {
	approvals := [_approval("bob", ["sre"], "2026-01-01T11:30:00Z"), _approval("carol", ["sre"], "2026-01-01T11:30:00Z")]
	inp := json.remove(_with_approvals(_prod_delete, approvals), ["time"])
	gateway.decision.outcome == "needs_approval" with input as inp
}

test_allow_self_approval_when_every_reason_allows_it if {
	inp := _with_approvals(lib_test.k8s_delete("Deployment", "web"), [_approval("alice", ["sre"], "2026-01-01T11:59:00Z")])
	d := gateway.decision with input as inp
	d.outcome == "allow"
	d.approval.allow_self_approval == true
	_codes(d.reasons) == {"OPS-DESTRUCT-001"}
}

test_allow_any_group_when_approver_groups_empty if {
	inp := _with_approvals(lib_test.k8s_delete("Deployment", "web"), [_approval("zed", [], "2026-01-01T11:59:00Z")])
	gateway.decision.outcome == "allow" with input as inp with data.params.approval.approver_groups as []
}

test_deny_reasons_win_over_approvals if {
	inp := _with_approvals(
		lib_test.with_field(lib_test.k8s_delete("Deployment", "web"), "/target/label_selector", "app=web"),
		[_approval("bob", ["sre"], "2026-01-01T11:59:00Z"), _approval("carol", ["sre"], "2026-01-01T11:59:00Z")],
	)
	gateway.decision.outcome == "deny" with input as inp
}

test_allow_approvals_given_without_approval_reasons_show_default_block if {
	d := gateway.decision with input as _with_approvals(_clean, [_approval("bob", ["sre"], "2026-01-01T11:59:00Z")])
	d.outcome == "allow"
	d.approval == {
		"min_approvals": 1,
		"approver_groups": ["sre", "platform-admins"],
		"ttl_seconds": 3600,
		"allow_self_approval": true,
	}
}

test_allow_secret_read_carries_redaction if {
	d := gateway.decision with input as lib_test.k8s_read("k8s_list", "list", "Secret")
	d.outcome == "allow"
	d.obligations.redact == ["/data", "/items/*/data", "/items/*/stringData", "/stringData"]
}

test_allow_log_read_carries_line_cap if {
	d := gateway.decision with input as lib_test.k8s_read("k8s_logs", "logs", "Pod")
	d.obligations.max_log_lines == 500
}

test_allow_warn_mode_reports_without_blocking if {
	privileged := object.union(lib_test.good_container("app"), {"securityContext": {"privileged": true}})
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([privileged])))
	d := gateway.decision with input as inp with data.params.modes as {"no_privileged": "warn"}
	d.outcome == "allow"
	_codes(d.warnings) == {"K8S-PRIV-001"}
	d.reasons == []
}

test_allow_dryrun_mode_logs_only if {
	privileged := object.union(lib_test.good_container("app"), {"securityContext": {"privileged": true}})
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([privileged])))
	d := gateway.decision with input as inp with data.params.modes as {"no_privileged": "dryrun"}
	d.outcome == "allow"
	_codes(d.dryrun) == {"K8S-PRIV-001"}
	d.dryrun[0].effect == "dryrun"
}

test_deny_mode_can_turn_approval_into_denial if {
	d := gateway.decision with input as _prod_delete with data.params.modes as {"production_protection": "deny"}
	d.outcome == "deny"
}

test_deny_garbage_input if {
	d := gateway.decision with input as "garbage"
	d.outcome == "deny"
	"GW-INPUT-001" in _codes(d.reasons)
}

test_deny_by_default_when_policy_cannot_evaluate if {
	d := gateway.decision with input as _prod_delete with data.params.approval as "broken"
	d.outcome == "deny"
	_codes(d.reasons) == {"GW-EVAL-001"}
}
