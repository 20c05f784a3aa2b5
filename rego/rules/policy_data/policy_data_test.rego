package rules.policy_data_test

import data.rules.policy_data

test_allow_shipped_data if {
	count(policy_data.violation) == 0
}

test_deny_broken_approval_defaults if {
	some v in policy_data.violation with data.params.approval as "broken"
	v.code == "GW-DATA-001"
	contains(v.message, "params.approval")
}

test_deny_zero_min_approvals if {
	count(policy_data.violation) == 1 with data.params.approval.min_approvals as 0
}

test_deny_missing_catalog_and_environments if {
	count(policy_data.violation) == 2 with data.params.catalog as {} with data.params.production as {}
}

test_deny_missing_rule_parameters if {
	some v in policy_data.violation with data.params.rules.no_root as null
	v.message == "policy data is incomplete: params.rules.no_root is missing"
}

test_deny_missing_parameter_inside_a_rule_block if {
	# Without it the production rule had no reason to report: writes went through.
	messages := _messages with data.params.rules.production_protection.write_approval as null
	messages == {concat("", [
		"policy data is incomplete: params.rules.production_protection.write_approval must be ",
		"an object of min_approvals, ttl_seconds (each 1 or more) and allow_self_approval",
	])}
}

test_deny_parameters_of_the_wrong_type if {
	messages := _messages with data.params.rules.change_limits.max_replicas as "50"
		with data.params.rules.no_root.require_explicit_non_root as "yes"
		with data.params.rules.bounded_logs.max_log_lines as 2.5
	messages == {
		"policy data is incomplete: params.rules.change_limits.max_replicas must be a whole number, 0 or more",
		"policy data is incomplete: params.rules.no_root.require_explicit_non_root must be true or false",
		"policy data is incomplete: params.rules.bounded_logs.max_log_lines must be a whole number, 0 or more",
	}
}

test_deny_negative_change_percent if {
	count(_messages) == 1 with data.params.rules.change_limits.max_change_percent as -10
}

test_deny_invalid_regular_expression if {
	# An invalid pattern makes every match undefined: the check would find nothing.
	messages := _messages with data.params.rules.argument_hygiene.injection_patterns as ["(?i)ignore(", "ok"]
	messages == {concat("", [
		"policy data is incomplete: params.rules.argument_hygiene.injection_patterns must be ",
		"a list of valid regular expressions",
	])}
}

test_deny_list_with_an_entry_that_is_not_a_string if {
	count(_messages) == 1 with data.params.rules.no_dangerous_capabilities.allowed_capabilities as ["CHOWN", 7]
}

test_deny_unknown_approval_setting if {
	# A misspelt setting would be ignored, and the default of one approval would apply.
	count(_messages) == 1 with data.params.rules.production_protection.delete_approval as {"min_approval": 2}
}

test_deny_approval_setting_out_of_range if {
	count(_messages) == 1 with data.params.rules.destructive_actions.approval as {"min_approvals": 0}
}

test_deny_malformed_scopes_and_annotations if {
	messages := _messages with data.params.rules.principal_scope.groups.sre.clusters as null
		with data.params.rules.external_services.internal_annotations as {"a": true}
	count(messages) == 2
}

test_deny_catalog_entry_without_effect if {
	count(_messages) == 1 with data.params.catalog.k8s_get.effect as null
}

test_deny_missing_environment_label if {
	count(_messages) == 1 with data.params.production.environment_label as null
}

test_deny_rule_parameters_that_are_not_an_object if {
	messages := _messages with data.params.rules as ["no_root"]
	"policy data is incomplete: params.rules.no_root is missing" in messages
	count(messages) == 23
}

test_allow_empty_lists_and_optional_approval_settings if {
	# The whole of params.rules replaced: OPA merges a `with` value for a nested path into
	# the document when the rule reads a parent of that path, so an object there could
	# not be emptied.
	rules := json.patch(data.params.rules, [
		{"op": "replace", "path": "/approved_registries/registries", "value": []},
		{"op": "replace", "path": "/destructive_actions/approval", "value": {}},
		{"op": "replace", "path": "/principal_scope/groups", "value": {}},
	])
	count(policy_data.violation) == 0 with data.params.rules as rules
}

test_allow_every_approval_setting if {
	settings := {"min_approvals": 3, "ttl_seconds": 600, "allow_self_approval": false}
	count(policy_data.violation) == 0 with data.params.rules.destructive_actions.approval as settings
}

_messages contains v.message if some v in policy_data.violation

# Whole params.rules replaced, as above: a `with` on the nested path would be merged.
_runaway_limits(limits) := json.patch(data.params.rules, [_replace_limits(limits)])

_replace_limits(limits) := {"op": "replace", "path": "/runaway_protection/limits", "value": limits}

test_deny_runaway_limits_that_cannot_be_applied if {
	good := {"scope": "principal", "counter": "deletes_last_minute", "needs_approval": 5, "deny": 10}
	bad_limits := [
		{"production": [good]},
		{"default": [object.union(good, {"scope": "everyone"})]},
		{"default": [object.union(good, {"counter": "deletes_last_day"})]},
		{"default": [object.remove(good, ["needs_approval", "deny"])]},
		{"default": [object.union(good, {"needs_approval": 10})]},
		{"default": [object.union(good, {"deny": 0, "needs_approval": 0})]},
		{"default": [object.union(good, {"deny": 2.5})]},
		{"default": [object.union(good, {"threshold": 3})]},
		{"default": [good], "staging": "none"},
	]
	every limits in bad_limits {
		some v in policy_data.violation with data.params.rules as _runaway_limits(limits)
		contains(v.message, "params.rules.runaway_protection.limits must be an object of environments")
	}
}

test_allow_runaway_limits_with_one_threshold if {
	limits := {"default": [
		{"scope": "session", "counter": "calls_last_hour", "deny": 1000},
		{"scope": "principal", "counter": "writes_last_hour", "needs_approval": 50},
	]}
	count(policy_data.violation) == 0 with data.params.rules as _runaway_limits(limits)
}

test_allow_clusters_may_be_empty if {
	count(policy_data.violation) == 0 with data.params.clusters as {}
}

test_deny_missing_or_malformed_clusters if {
	expected := {concat("", [
		"policy data is incomplete: params.clusters must map cluster names or globs to objects of ",
		"environment and palette_uid, each a non-empty string",
	])}
	_messages == expected with data.params.clusters as null
	_messages == expected with data.params.clusters as ["prod-eu"]
	_messages == expected with data.params.clusters as {"prod-eu": "production"}
	_messages == expected with data.params.clusters as {"prod-eu": {"environment": 1}}
	_messages == expected with data.params.clusters as {"prod-eu": {"environment": " "}}
}

test_deny_misspelt_cluster_field if {
	# "enviroment" would leave prod-eu unprotected while looking configured.
	count(_messages) == 1 with data.params.clusters as {"prod-eu": {"enviroment": "production"}}
}

test_deny_a_mode_that_is_not_a_mode if {
	messages := _messages with data.params.modes as {"no_latest_tag": "off", "no_root": "warn"}
	expected := {concat("", [
		"policy data is incomplete: params.modes.no_latest_tag must be one of ",
		"deny, needs_approval, warn or dryrun",
	])}
	messages == expected
}

test_deny_modes_that_are_not_an_object if {
	expected := {"policy data is incomplete: params.modes must be an object of rule names and modes"}
	_messages == expected with data.params.modes as ["warn"]
}

test_deny_weakening_a_guard_rule if {
	# A guard in warn or dryrun would let malformed actions or data through.
	messages := _messages with data.params.modes as {"known_action": "warn", "policy_data": "dryrun"}
	messages == {
		"policy data is incomplete: params.modes.known_action cannot be set: a guard rule always denies",
		"policy data is incomplete: params.modes.policy_data cannot be set: a guard rule always denies",
	}
}

test_allow_a_guard_rule_set_to_deny if {
	count(_messages) == 0 with data.params.modes as {"known_action": "deny"}
}

test_deny_malformed_preexisting_settings if {
	expected := {concat("", [
		"policy data is incomplete: params.preexisting must be an object of rule names and ",
		"{operation: warn or enforce} objects",
	])}
	_messages == expected with data.params.preexisting as {"no_root": {"scale": "ignore"}}
	_messages == expected with data.params.preexisting as {"no_root": "warn"}
	_messages == expected with data.params.preexisting as ["no_root"]
}

test_deny_preexisting_setting_on_a_guard_rule if {
	expected := {concat("", [
		"policy data is incomplete: params.preexisting.known_action cannot be ",
		"set: a guard rule's findings always count",
	])}
	_messages == expected with data.params.preexisting as {"known_action": {"apply": "warn"}}
}

test_allow_without_preexisting_settings if {
	# Everything is enforced then: the safe default.
	count(_messages) == 0 with data.params.preexisting as {}
}

test_deny_host_ports_out_of_range if {
	message := concat("", [
		"policy data is incomplete: params.rules.pod_security_baseline.allowed_host_ports ",
		"must be a list of port numbers, 1 to 65535",
	])
	_messages == {message} with data.params.rules.pod_security_baseline.allowed_host_ports as [80, 0]
	_messages == {message} with data.params.rules.pod_security_baseline.allowed_host_ports as [65536]
	_messages == {message} with data.params.rules.pod_security_baseline.allowed_host_ports as ["80"]
	_messages == {message} with data.params.rules.pod_security_baseline.allowed_host_ports as [80.5]
	count(_messages) == 0 with data.params.rules.pod_security_baseline.allowed_host_ports as [80, 443]
}

test_deny_malformed_untrusted_sources if {
	message := concat("", [
		"policy data is incomplete: params.rules.untrusted_content.sources must be a list of objects, ",
		"each with tool and content as text and optionally kinds as a list of strings",
	])
	_messages == {message} with data.params.rules.untrusted_content.sources as [{"tool": "k8s_logs"}]
	text_kinds := [{"tool": "k8s_get", "content": "x", "kinds": "ConfigMap"}]
	_messages == {message} with data.params.rules.untrusted_content.sources as text_kinds
	misspelt := [{"tool": "k8s_get", "content": "x", "kind": ["ConfigMap"]}]
	_messages == {message} with data.params.rules.untrusted_content.sources as misspelt
	_messages == {message} with data.params.rules.untrusted_content.sources as ["k8s_logs"]
	listed := [{"tool": "k8s_get", "content": "x", "kinds": ["ConfigMap"]}]
	count(_messages) == 0 with data.params.rules.untrusted_content.sources as listed
}

test_allow_a_catalog_entry_with_lists_of_backends_and_effects if {
	entry := {"backends": ["kubernetes"], "operation": "rollback", "effects": ["write", "delete"]}
	count(_messages) == 0 with data.params.catalog.gateway_rollback as entry
}

test_deny_catalog_lists_that_are_empty_mixed_or_wrong if {
	bad_entries := [
		{"backends": [], "operation": "rollback", "effects": ["write"]},
		{"backends": ["kubernetes"], "operation": "rollback", "effects": ["exec"]},
		{"backends": "kubernetes", "operation": "rollback", "effects": ["write"]},
		{
			"backend": "kubernetes", "backends": ["kubernetes"],
			"operation": "rollback", "effect": "write", "effects": ["write"],
		},
	]
	every entry in bad_entries {
		count(_messages) == 1 with data.params.catalog.gateway_rollback as entry
	}
}

test_deny_rollback_parameters_of_the_wrong_type if {
	some name, wrong in {"max_age_seconds": "1d", "stale_approval": {"min_approvals": 0}, "force_approval": []}
	rules := json.patch(data.params.rules, [{"op": "replace", "path": sprintf("/rollback/%s", [name]), "value": wrong}])
	messages := _messages with data.params.rules as rules
	count(messages) == 1
}
