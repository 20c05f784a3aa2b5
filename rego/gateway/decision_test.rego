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

# -- pre-existing findings ---------------------------------------------------------------

# A container without limits: resource_limits finds it, in the live object and after.
_unlimited := object.remove(lib_test.good_container("app"), ["resources"])

_privileged := object.union(lib_test.good_container("app"), {"securityContext": {"privileged": true}})

# A write of `after` over the live `before`, by tool/operation.
_change(tool, operation, before, after) := json.patch(
	lib_test.k8s_write(tool, operation, lib_test.deployment("web", lib_test.pod_spec([after]))),
	[{"op": "replace", "path": "/current", "value": lib_test.deployment("web", lib_test.pod_spec([before]))}],
)

_scale(container, replicas) := json.patch(
	_change("k8s_scale", "scale", container, container),
	[{"op": "replace", "path": "/object/spec/replicas", "value": replicas}],
)

test_allow_scale_of_a_workload_with_preexisting_findings_warns if {
	d := gateway.decision with input as _scale(_unlimited, 3)
	d.outcome == "allow"
	d.reasons == []
	{w.message | some w in d.warnings} == {
		"pre-existing, unchanged by this k8s_scale: containers 'app' has no cpu limit",
		"pre-existing, unchanged by this k8s_scale: containers 'app' has no memory limit",
	}
}

test_allow_restart_of_a_privileged_workload_warns if {
	restart := json.patch(_change("k8s_restart", "restart", _privileged, _privileged), [{
		"op": "add", "path": "/object/spec/template/metadata/annotations",
		"value": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T12:00:00Z"},
	}])
	d := gateway.decision with input as restart
	d.outcome == "allow"
	_codes(d.warnings) == {"K8S-PRIV-001"}
}

test_deny_apply_keeps_enforcing_preexisting_findings if {
	# Same object before and after: an apply is judged as it always was.
	d := gateway.decision with input as _change("k8s_apply", "apply", _unlimited, _unlimited)
	d.outcome == "deny"
	_codes(d.reasons) == {"K8S-RES-001"}
}

test_deny_apply_changing_the_image_of_a_privileged_container if {
	newer := object.union(_privileged, {"image": "registry.example.com/team/app:1.2.4"})
	d := gateway.decision with input as _change("k8s_apply", "apply", _privileged, newer)
	d.outcome == "deny"
	"K8S-PRIV-001" in _codes(d.reasons)
}

test_deny_image_change_even_where_apply_would_warn if {
	# A team that lets applies warn on pre-existing findings: a changed pod spec still
	# makes every finding count, since the same message may hide a new container.
	newer := object.union(_privileged, {"image": "registry.example.com/team/app:1.2.4"})
	d := gateway.decision with input as _change("k8s_apply", "apply", _privileged, newer)
		with data.params.preexisting as {"no_privileged": {"apply": "warn"}}
	d.outcome == "deny"
	"K8S-PRIV-001" in _codes(d.reasons)
	same := gateway.decision with input as _change("k8s_apply", "apply", _privileged, _privileged)
		with data.params.preexisting as {"no_privileged": {"apply": "warn"}}
	same.outcome == "allow"
}

test_deny_scale_that_also_brings_a_new_finding if {
	# The live object lacks limits (pre-existing); the written one also runs as root.
	rooted := object.union(_unlimited, {"securityContext": {"runAsUser": 0}})
	scale := {"op": "replace", "path": "/object/spec/replicas", "value": 3}
	inp := json.patch(_change("k8s_scale", "scale", _unlimited, rooted), [scale])
	d := gateway.decision with input as inp
	d.outcome == "deny"
	"K8S-ROOT-001" in _codes(d.reasons)
}

test_deny_scale_that_worsens_a_finding if {
	# max_replicas: 50. Already above it, a scale further up changes the message: judged.
	inp := _scale(lib_test.good_container("app"), 80)
	current_above := json.patch(inp, [{"op": "replace", "path": "/current/spec/replicas", "value": 60}])
	d := gateway.decision with input as current_above
	d.outcome == "deny"
	_codes(d.reasons) == {"OPS-CHANGE-001"}
}

test_deny_set_resources_keeps_findings_about_the_resources_it_sets if {
	# The live container has no memory limit; set_resources raises its CPU 100-fold.
	before := object.union(_unlimited, {"resources": {"limits": {"cpu": "100m"}}})
	after := object.union(_unlimited, {"resources": {"limits": {"cpu": "10"}}})
	d := gateway.decision with input as _change("k8s_set_resources", "set_resources", before, after)
	d.outcome == "deny"
	_codes(d.reasons) == {"OPS-CHANGE-001"}
	expected := {"pre-existing, unchanged by this k8s_set_resources: containers 'app' has no memory limit"}
	{w.message | some w in d.warnings} == expected
}

test_deny_preexisting_setting_enforce_for_a_rule if {
	d := gateway.decision with input as _scale(_unlimited, 3)
		with data.params.preexisting as {"resource_limits": {"scale": "enforce"}}
	d.outcome == "deny"
}

test_deny_guard_findings_are_never_preexisting if {
	malformed := object.union(lib_test.good_container("app"), {"securityContext": "privileged"})
	inp := _scale(malformed, 3)
	d := gateway.decision with input as inp with data.params.preexisting as {"known_action": {"scale": "warn"}}
	d.outcome == "deny"
	"GW-INPUT-001" in _codes(d.reasons)
}

# -- guards -------------------------------------------------------------------------------

test_deny_guards_ignore_modes_that_would_weaken_them if {
	inp := json.patch(_clean, [{"op": "replace", "path": "/version", "value": 2}])
	d := gateway.decision with input as inp with data.params.modes as {"known_action": "warn"}
	d.outcome == "deny"
	some r in d.reasons
	r.code == "GW-INPUT-001"
	r.effect == "deny"
	dry := gateway.decision with input as inp with data.params.modes as {"known_action": "dryrun", "policy_data": "dryrun"}
	dry.outcome == "deny"
}

# -- untrusted content --------------------------------------------------------------------

test_allow_log_read_names_its_untrusted_content if {
	read := lib_test.k8s_read("k8s_logs", "logs", "Pod")
	d := gateway.decision with input as read
	d.outcome == "allow"
	d.obligations.untrusted == ["pod logs"]
	plain := gateway.decision with input as lib_test.k8s_read("k8s_get", "get", "Pod")
	plain.obligations.untrusted == []
}

test_deny_write_after_untrusted_read_needs_approval if {
	tainted := json.patch(_clean, [{"op": "add", "path": "/session", "value": {
		"id": "s-1",
		"untrusted_reads": [{
			"tool": "k8s_logs",
			"content": "pod logs",
			"target": {"namespace": "dev", "name": "worker"},
			"at": "2026-01-01T11:59:00Z",
		}],
	}}])
	d := gateway.decision with input as tainted
	d.outcome == "needs_approval"
	_codes(d.reasons) == {"GW-TAINT-001"}
	off := gateway.decision with input as tainted with data.params.modes as {"untrusted_content": "warn"}
	off.outcome == "allow"
	_codes(off.warnings) == {"GW-TAINT-001"}
}

test_deny_malformed_preexisting_settings_enforce_everything if {
	d := gateway.decision with input as _scale(_unlimited, 3) with data.params.preexisting as "warn"
	d.outcome == "deny"
}
