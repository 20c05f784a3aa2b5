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
