package rules.no_privilege_escalation_test

import data.gateway
import data.lib_test
import data.rules.no_privilege_escalation

_good := lib_test.good_container("app")

_bad := object.union(lib_test.good_container("bad"), {"securityContext": {"allowPrivilegeEscalation": true}})

test_allow_escalation_disabled if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([_good])))
	count(no_privilege_escalation.violation) == 0 with input as inp
}

test_deny_escalation_in_container if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([_bad])))
	lib_test.codes(no_privilege_escalation.violation) == {"K8S-PRIV-002"} with input as inp
}

test_deny_escalation_in_init_container if {
	spec := {"initContainers": [_bad], "containers": [_good]}
	count(no_privilege_escalation.violation) == 1 with input as lib_test.apply(lib_test.deployment("web", spec))
}

test_deny_escalation_in_cronjob_template if {
	inp := lib_test.apply(lib_test.cronjob("nightly", lib_test.pod_spec([_bad])))
	count(no_privilege_escalation.violation) == 1 with input as inp
}

test_deny_allowprivilegeescalation_of_the_wrong_type if {
	# Text where a boolean belongs compares unequal to true here: the shape guard refuses it.
	c := object.union(lib_test.good_container("app"), {"securityContext": {"allowPrivilegeEscalation": "true"}})
	d := gateway.decision with input as lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([c])))
	d.outcome == "deny"
	expected := {["GW-INPUT-001", "allowPrivilegeEscalation of containers 'app' must be true or false"]}
	{[r.code, r.message] | some r in d.reasons} == expected
}
