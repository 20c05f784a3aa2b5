package rules.resource_limits_test

import data.lib_test
import data.rules.resource_limits

_without(path) := json.remove(lib_test.good_container("app"), [path])

test_allow_cpu_and_memory_limits if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))
	count(resource_limits.violation) == 0 with input as inp
}

test_allow_ephemeral_container_without_limits if {
	spec := {
		"containers": [lib_test.good_container("app")],
		"ephemeralContainers": [object.remove(lib_test.good_container("debug"), ["resources"])],
	}
	count(resource_limits.violation) == 0 with input as lib_test.apply(lib_test.pod("web", spec))
}

test_deny_missing_memory_limit if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([_without("resources/limits/memory")])))
	lib_test.codes(resource_limits.violation) == {"K8S-RES-001"} with input as inp
}

test_deny_missing_resources if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([_without("resources")])))
	count(resource_limits.violation) == 2 with input as inp
}

test_deny_requests_without_limits_in_init_container if {
	spec := {"initContainers": [_without("resources/limits")], "containers": [lib_test.good_container("app")]}
	count(resource_limits.violation) == 2 with input as lib_test.apply(lib_test.deployment("web", spec))
}

test_deny_missing_limit_in_cronjob_template if {
	inp := lib_test.apply(lib_test.cronjob("nightly", lib_test.pod_spec([_without("resources/limits/cpu")])))
	count(resource_limits.violation) == 1 with input as inp
}
