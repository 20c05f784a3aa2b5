package rules.runaway_protection_test

import data.lib_test
import data.rules.runaway_protection

_zero := {
	"calls_last_minute": 0,
	"calls_last_hour": 0,
	"writes_last_minute": 0,
	"writes_last_hour": 0,
	"deletes_last_minute": 0,
	"deletes_last_hour": 0,
	"session": null,
}

_counts(overrides) := object.union(_zero, overrides)

_limits := {
	"production": [{"scope": "principal", "counter": "writes_last_minute", "needs_approval": 2, "deny": 5}],
	"default": [
		{"scope": "principal", "counter": "deletes_last_minute", "needs_approval": 10, "deny": 30},
		{"scope": "session", "counter": "writes_last_minute", "needs_approval": 3},
		{"scope": "principal", "counter": "calls_last_minute", "deny": 100},
	],
}

_params := {"approval": {"min_approvals": 1}, "limits": _limits}

_delete(history) := object.union(lib_test.k8s_delete("ConfigMap", "c"), {"history": history})

_write(history, environment) := object.union(
	lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")]))),
	{"history": history, "target": {"environment": environment}},
)

_read(history) := object.union(lib_test.k8s_read("k8s_get", "get", "Pod"), {"history": history})

_effects(reasons) := {r.effect | some r in reasons}

test_allow_below_every_threshold if {
	count(runaway_protection.violation) == 0 with input as _delete(_counts({"deletes_last_minute": 9}))
		with data.params.rules.runaway_protection as _params
}

test_allow_without_history if {
	count(runaway_protection.violation) == 0 with input as lib_test.k8s_delete("ConfigMap", "c")
		with data.params.rules.runaway_protection as _params
}

test_allow_null_history if {
	count(runaway_protection.violation) == 0 with input as _delete(null)
		with data.params.rules.runaway_protection as _params
}

test_deny_burst_of_deletes_needs_approval_from_the_threshold if {
	burst := _delete(_counts({"deletes_last_minute": 10}))
	_effects(runaway_protection.violation) == {"needs_approval"} with input as burst
		with data.params.rules.runaway_protection as _params
}

test_deny_larger_burst_is_refused_not_parked if {
	_effects(runaway_protection.violation) == {"deny"} with input as _delete(_counts({"deletes_last_minute": 30}))
		with data.params.rules.runaway_protection as _params
	_effects(runaway_protection.violation) == {"deny"} with input as _delete(_counts({"deletes_last_minute": 31}))
		with data.params.rules.runaway_protection as _params
}

test_deny_reason_names_who_what_and_the_limit if {
	some reason in runaway_protection.violation with input as _delete(_counts({"deletes_last_minute": 12}))
		with data.params.rules.runaway_protection as _params
	reason.code == "OPS-RUNAWAY-001"
	reason.message == concat(" ", [
		"principal 'alice' made 12 deletes in the last minute",
		"(deletes_last_minute, limit 10 by default): needs approval",
	])
	reason.approval.min_approvals == 1
}

test_allow_a_delete_counter_never_judges_a_write if {
	count(runaway_protection.violation) == 0 with input as _write(_counts({"deletes_last_minute": 50}), "dev")
		with data.params.rules.runaway_protection as _params
}

test_allow_a_read_is_judged_by_call_counters_only if {
	history := _counts({"writes_last_minute": 500, "deletes_last_minute": 500})
	count(runaway_protection.violation) == 0 with input as _read(history)
		with data.params.rules.runaway_protection as _params
}

test_deny_a_read_loop_by_the_calls_counter if {
	_effects(runaway_protection.violation) == {"deny"} with input as _read(_counts({"calls_last_minute": 100}))
		with data.params.rules.runaway_protection as _params
}

test_deny_production_has_its_own_limits if {
	burst := _write(_counts({"writes_last_minute": 2}), "production")
	_effects(runaway_protection.violation) == {"needs_approval"} with input as burst
		with data.params.rules.runaway_protection as _params
	loop := _write(_counts({"writes_last_minute": 5}), "production")
	_effects(runaway_protection.violation) == {"deny"} with input as loop
		with data.params.rules.runaway_protection as _params
	count(runaway_protection.violation) == 0 with input as _write(_counts({"writes_last_minute": 2}), "dev")
		with data.params.rules.runaway_protection as _params
}

test_deny_session_limit_judges_the_session_counts if {
	history := _counts({"writes_last_minute": 1, "session": _counts({"writes_last_minute": 3})})
	_effects(runaway_protection.violation) == {"needs_approval"} with input as _write(history, "dev")
		with data.params.rules.runaway_protection as _params
}

test_allow_session_limit_without_a_session if {
	count(runaway_protection.violation) == 0 with input as _write(_counts({"writes_last_minute": 3}), "dev")
		with data.params.rules.runaway_protection as _params
}

test_allow_warn_mode_only_reports if {
	_effects(runaway_protection.violation) == {"warn"} with input as _delete(_counts({"deletes_last_minute": 40}))
		with data.params.rules.runaway_protection as _params
		with data.params.modes as {"runaway_protection": "warn"}
}

test_deny_environment_with_limits_of_its_own if {
	staging := {"staging": [{"scope": "principal", "counter": "writes_last_hour", "deny": 1}]}
	params := {"approval": {"min_approvals": 1}, "limits": object.union(_limits, staging)}
	_effects(runaway_protection.violation) == {"deny"} with input as _write(_counts({"writes_last_hour": 1}), "staging")
		with data.params.rules.runaway_protection as params
}
