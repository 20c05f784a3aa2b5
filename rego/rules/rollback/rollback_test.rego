package rules.rollback_test

import data.lib_test
import data.rules.rollback

# The inverse of a scale to 4: back to 2 replicas, an hour after the scale ran.
_rollback(args) := object.union(lib_test.k8s_write("gateway_rollback", "rollback", obj), {
	"current": lib_test.with_field(obj, "/spec/replicas", 4),
	"args": object.union(
		{
			"rollback_of": "6f1d2c9e-0000-4000-8000-000000000001",
			"original_tool": "k8s_scale",
			"age_seconds": 3600,
			"rollback_of_rollback": false,
			"force": false,
			"inverse": "scaled",
		},
		args,
	),
}) if {
	obj := lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")]))
}

test_allow_a_recent_rollback if {
	count(rollback.violation) == 0 with input as _rollback({})
}

test_allow_a_rollback_of_a_rollback if {
	count(rollback.violation) == 0 with input as _rollback({"rollback_of_rollback": true})
}

test_allow_other_actions_with_the_same_arguments if {
	inp := object.union(lib_test.apply(lib_test.deployment("web", {})), {"args": {"force": true, "age_seconds": 9e9}})
	count(rollback.violation) == 0 with input as inp
}

test_deny_a_forced_rollback_needs_approval_without_self_approval if {
	some v in rollback.violation with input as _rollback({"force": true})
	v.code == "OPS-ROLLBACK-001"
	v.effect == "needs_approval"
	v.approval.min_approvals == 1
	v.approval.allow_self_approval == false
	v.message == "rolling back k8s_scale on 'web' by force, over what changed since the gateway's write"
}

test_deny_an_old_rollback_needs_approval if {
	some v in rollback.violation with input as _rollback({"age_seconds": 90061})
	v.effect == "needs_approval"
	v.message == "rolling back k8s_scale on 'web' that ran 1d 1h ago, longer than 1d 0h"
}

test_deny_an_unknown_age_counts_as_old if {
	some bad in [null, "3600", -1]
	some v in rollback.violation with input as _rollback({"age_seconds": bad})
	v.message == "rolling back k8s_scale on 'web' whose age is unknown"
}

test_deny_the_age_limit_is_data if {
	count(rollback.violation) == 1 with input as _rollback({}) with data.params.rules.rollback.max_age_seconds as 600
	count(rollback.violation) == 0 with input as _rollback({"age_seconds": 86400})
}

test_deny_durations_read_as_people_write_them if {
	some v in rollback.violation with input as _rollback({"age_seconds": 7260})
		with data.params.rules.rollback.max_age_seconds as 59
	v.message == "rolling back k8s_scale on 'web' that ran 2h 1m ago, longer than 59s"
}

test_deny_the_mode_is_data if {
	some v in rollback.violation with input as _rollback({"force": true}) with data.params.modes as {"rollback": "deny"}
	v.effect == "deny"
}

test_deny_an_unnamed_original_is_still_reported if {
	inp := json.remove(_rollback({"force": true}), ["args/original_tool"])
	some v in rollback.violation with input as inp
	v.message == "rolling back an action on 'web' by force, over what changed since the gateway's write"
}
