package lib_test

import data.lib

_chain := [
	{"path": ["rules", "demo", "violation"]},
	{
		"path": ["rules", "demo"],
		"annotations": {"title": "Demo", "custom": {"code": "DEMO-001", "severity": "low", "mode": "needs_approval"}},
	},
]

test_allow_reason_from_metadata if {
	lib.reason_template(_chain) == {
		"code": "DEMO-001",
		"rule": "demo",
		"severity": "low",
		"effect": "needs_approval",
	}
}

test_deny_rule_without_coded_metadata_gets_a_critical_denial if {
	lib.reason_template([{"path": ["rules", "demo", "violation"]}]) == {
		"code": "GW-META-001",
		"rule": "rules.demo.violation",
		"severity": "critical",
		"effect": "deny",
	}
}

test_allow_mode_override_of_another_rule_keeps_the_default if {
	lib.reason_template(_chain).effect == "needs_approval" with data.params.modes as {"other": "dryrun"}
}

test_allow_mode_override_from_data if {
	lib.reason_template(_chain).effect == "warn" with data.params.modes as {"demo": "warn"}
	lib.reason_template(_chain).effect == "dryrun" with data.params.modes as {"demo": "dryrun", "other": "deny"}
}

test_deny_invalid_mode_override_means_deny if {
	lib.reason_template(_chain).effect == "deny" with data.params.modes as {"demo": "off"}
}

test_deny_invalid_default_mode_means_deny if {
	chain := json.patch(_chain, [{"op": "replace", "path": "/1/annotations/custom/mode", "value": "maybe"}])
	lib.reason_template(chain).effect == "deny"
}

test_allow_missing_modes_object_keeps_defaults if {
	lib.reason_template(_chain).effect == "needs_approval" with data.params.modes as "broken"
}

test_allow_approval_reason_merges_defaults if {
	r := lib.approval_template(_chain, {"min_approvals": 2})
	r.approval == object.union(data.params.approval, {"min_approvals": 2})
}

test_allow_approval_reason_ignores_non_object_overrides if {
	lib.approval_template(_chain, null).approval == data.params.approval
}

_guard_chain := json.patch(_chain, [{"op": "add", "path": "/1/annotations/custom/guard", "value": true}])

test_deny_guard_rules_deny_whatever_the_modes_say if {
	lib.reason_template(_guard_chain).effect == "deny"
	lib.reason_template(_guard_chain).effect == "deny" with data.params.modes as {"demo": "warn"}
	lib.reason_template(_guard_chain).effect == "deny" with data.params.modes as {"demo": "dryrun"}
	lib.reason_template(_guard_chain).effect == "deny" with data.params.modes as {"demo": "needs_approval"}
}
