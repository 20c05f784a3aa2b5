package rules.no_privileged_test

import data.gateway
import data.lib_test
import data.rules.no_privileged

_good := lib_test.good_container("app")

_bad := object.union(lib_test.good_container("bad"), {"securityContext": {"privileged": true}})

test_allow_unprivileged_deployment if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([_good])))
	count(no_privileged.violation) == 0 with input as inp
}

test_allow_privileged_false if {
	c := object.union(_good, {"securityContext": {"privileged": false}})
	count(no_privileged.violation) == 0 with input as lib_test.apply(lib_test.pod("web", lib_test.pod_spec([c])))
}

test_deny_privileged_container if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([_good, _bad])))
	lib_test.codes(no_privileged.violation) == {"K8S-PRIV-001"} with input as inp
}

test_deny_privileged_init_container if {
	spec := {"initContainers": [_bad], "containers": [_good]}
	count(no_privileged.violation) == 1 with input as lib_test.apply(lib_test.deployment("web", spec))
}

test_deny_privileged_ephemeral_container if {
	spec := {"ephemeralContainers": [_bad], "containers": [_good]}
	count(no_privileged.violation) == 1 with input as lib_test.apply(lib_test.pod("web", spec))
}

test_deny_privileged_in_cronjob_template if {
	inp := lib_test.apply(lib_test.cronjob("nightly", lib_test.pod_spec([_bad])))
	count(no_privileged.violation) == 1 with input as inp
}

test_allow_reads_are_not_inspected if {
	count(no_privileged.violation) == 0 with input as object.union(
		lib_test.k8s_read("k8s_get", "get", "Pod"),
		{"object": lib_test.pod("web", lib_test.pod_spec([_bad]))},
	)
}

test_deny_privileged_of_the_wrong_type if {
	# Text where a boolean belongs compares unequal to true here: the shape guard refuses it.
	c := object.union(lib_test.good_container("app"), {"securityContext": {"privileged": "true"}})
	d := gateway.decision with input as lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([c])))
	d.outcome == "deny"
	expected := {["GW-INPUT-001", "privileged of containers 'app' must be true or false"]}
	{[r.code, r.message] | some r in d.reasons} == expected
}
