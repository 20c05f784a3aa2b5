package rules.change_limits_test

import data.lib_test
import data.rules.change_limits

_container(name, requests, limits) := object.union(
	lib_test.good_container(name),
	{"resources": {"requests": requests, "limits": limits}},
)

_change(before, after) := object.union(
	lib_test.k8s_write("k8s_set_resources", "set_resources", lib_test.deployment("web", lib_test.pod_spec(after))),
	{"current": lib_test.deployment("web", lib_test.pod_spec(before))},
)

_base := [_container("app", {"cpu": "250m", "memory": "128Mi"}, {"cpu": "500m", "memory": "256Mi"})]

test_allow_moderate_change if {
	after := [_container("app", {"cpu": "1", "memory": "256Mi"}, {"cpu": "2", "memory": "1Gi"})]
	count(change_limits.violation) == 0 with input as _change(_base, after)
}

test_allow_exactly_six_times if {
	after := [_container("app", {"cpu": "1500m", "memory": "128Mi"}, {"cpu": "3", "memory": "256Mi"})]
	count(change_limits.violation) == 0 with input as _change(_base, after)
}

test_allow_new_container_has_nothing_to_compare if {
	after := array.concat(_base, [_container("sidecar", {"cpu": "4"}, {"cpu": "8", "memory": "8Gi"})])
	count(change_limits.violation) == 0 with input as _change(_base, after)
}

test_allow_create_without_current if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec(_base)))
	count(change_limits.violation) == 0 with input as inp
}

test_deny_cpu_limit_raised_more_than_500_percent if {
	after := [_container("app", {"cpu": "250m", "memory": "128Mi"}, {"cpu": "500", "memory": "256Mi"})]
	lib_test.codes(change_limits.violation) == {"OPS-CHANGE-001"} with input as _change(_base, after)
}

test_deny_memory_cut_more_than_500_percent if {
	after := [_container("app", {"cpu": "250m", "memory": "16Mi"}, {"cpu": "500m", "memory": "256Mi"})]
	count(change_limits.violation) == 1 with input as _change(_base, after)
}

test_deny_units_compared_not_strings if {
	after := [_container("app", {"cpu": "250m", "memory": "128Mi"}, {"cpu": "500m", "memory": "2Gi"})]
	count(change_limits.violation) == 1 with input as _change(_base, after)
}

test_deny_exponent_quantity if {
	after := [_container("app", {"cpu": "250m", "memory": "128Mi"}, {"cpu": "5e0", "memory": "256Mi"})]
	count(change_limits.violation) == 1 with input as _change(_base, after)
}

test_deny_invalid_quantity if {
	after := [_container("app", {"cpu": "250m", "memory": "128MB"}, {"cpu": "500m", "memory": "256Mi"})]
	some v in change_limits.violation with input as _change(_base, after)
	contains(v.message, "not a valid quantity")
}

test_deny_init_container_change if {
	before := {"initContainers": _base, "containers": []}
	after := {"initContainers": [_container("app", {"cpu": "250m", "memory": "1Gi"}, {"cpu": "500m", "memory": "256Mi"})]}
	inp := object.union(
		lib_test.k8s_write("k8s_set_resources", "set_resources", lib_test.deployment("web", after)),
		{"current": lib_test.deployment("web", before)},
	)
	count(change_limits.violation) == 1 with input as inp
}

test_deny_too_many_replicas if {
	obj := lib_test.with_field(lib_test.deployment("web", {}), "/spec/replicas", 51)
	count(change_limits.violation) == 1 with input as lib_test.k8s_write("k8s_scale", "scale", obj)
}

test_allow_replicas_at_maximum if {
	obj := lib_test.with_field(lib_test.deployment("web", {}), "/spec/replicas", 50)
	count(change_limits.violation) == 0 with input as lib_test.k8s_write("k8s_scale", "scale", obj)
}

# The ratio is judged once per distinct pair of texts: a request and a limit that
# make the same jump are still two findings.
test_deny_same_jump_in_request_and_limit_reported_twice if {
	before := [_container("app", {"cpu": "100m", "memory": "128Mi"}, {"cpu": "100m", "memory": "256Mi"})]
	after := [_container("app", {"cpu": "2", "memory": "128Mi"}, {"cpu": "2", "memory": "256Mi"})]
	count(change_limits.violation) == 2 with input as _change(before, after)
}

test_allow_same_pair_within_factor_in_request_and_limit if {
	before := [_container("app", {"cpu": "100m", "memory": "128Mi"}, {"cpu": "100m", "memory": "256Mi"})]
	after := [_container("app", {"cpu": "600m", "memory": "128Mi"}, {"cpu": "600m", "memory": "256Mi"})]
	count(change_limits.violation) == 0 with input as _change(before, after)
}

# An invalid live quantity gives nothing to compare against: no ratio finding.
test_allow_invalid_old_quantity_not_compared if {
	before := [_container("app", {"cpu": "250m", "memory": "128MB"}, {"cpu": "500m", "memory": "256Mi"})]
	after := [_container("app", {"cpu": "250m", "memory": "64Gi"}, {"cpu": "500m", "memory": "256Mi"})]
	count(change_limits.violation) == 0 with input as _change(before, after)
}

test_deny_negative_quantity_always_counts if {
	after := [_container("app", {"cpu": "-250m", "memory": "128Mi"}, {"cpu": "500m", "memory": "256Mi"})]
	count(change_limits.violation) == 1 with input as _change(_base, after)
}
