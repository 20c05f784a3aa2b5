package rules.no_host_namespaces_test

import data.gateway
import data.lib_test
import data.rules.no_host_namespaces

_spec(extra) := object.union(lib_test.pod_spec([lib_test.good_container("app")]), extra)

test_allow_no_host_namespaces if {
	inp := lib_test.apply(lib_test.deployment("web", _spec({"hostNetwork": false})))
	count(no_host_namespaces.violation) == 0 with input as inp
}

test_deny_host_network if {
	inp := lib_test.apply(lib_test.deployment("web", _spec({"hostNetwork": true})))
	lib_test.codes(no_host_namespaces.violation) == {"K8S-HOST-001"} with input as inp
}

test_deny_host_pid_and_ipc if {
	inp := lib_test.apply(lib_test.pod("web", _spec({"hostPID": true, "hostIPC": true})))
	count(no_host_namespaces.violation) == 2 with input as inp
}

test_deny_host_network_in_cronjob_template if {
	inp := lib_test.apply(lib_test.cronjob("nightly", _spec({"hostNetwork": true})))
	count(no_host_namespaces.violation) == 1 with input as inp
}

test_deny_host_namespace_of_the_wrong_type if {
	spec := {"hostIPC": "true", "containers": [lib_test.good_container("app")]}
	d := gateway.decision with input as lib_test.apply(lib_test.pod("web", spec))
	d.outcome == "deny"
	expected := {["K8S-HOST-001", `pod spec sets hostIPC to "true", which must be true or false`]}
	{[r.code, r.message] | some r in d.reasons} == expected
	unset := {"hostIPC": null, "hostPID": false, "containers": [lib_test.good_container("app")]}
	count(no_host_namespaces.violation) == 0 with input as lib_test.apply(lib_test.pod("web", unset))
}

test_deny_host_namespace_of_the_wrong_type_in_a_hardened_workload if {
	# A pod that is otherwise hardened (lib.hardened) still gets its host namespaces read.
	spec := {
		"hostPID": "yes",
		"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [lib_test.good_container("app")],
	}
	expected := {`pod spec sets hostPID to "yes", which must be true or false`}
	inp := lib_test.apply(lib_test.pod("web", spec))
	{v.message | some v in no_host_namespaces.violation} == expected with input as inp
}
