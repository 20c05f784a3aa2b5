package rules.no_root_test

import data.gateway
import data.lib_test
import data.rules.no_root

_container(security) := object.union(
	object.remove(lib_test.good_container("app"), ["securityContext"]),
	{"securityContext": security},
)

_input(pod_security, container) := lib_test.apply(lib_test.deployment("web", {
	"securityContext": pod_security,
	"containers": [container],
}))

test_allow_run_as_non_root if {
	count(no_root.violation) == 0 with input as _input({}, _container({"runAsNonRoot": true}))
}

test_allow_pod_level_non_root_user if {
	count(no_root.violation) == 0 with input as _input({"runAsUser": 1000}, _container({}))
}

test_allow_container_overrides_pod_root if {
	count(no_root.violation) == 0 with input as _input({"runAsUser": 0}, _container({"runAsUser": 1000}))
}

test_deny_run_as_user_zero if {
	lib_test.codes(no_root.violation) == {"K8S-ROOT-001"} with input as _input({}, _container({"runAsUser": 0}))
}

test_deny_pod_level_root_user if {
	count(no_root.violation) == 1 with input as _input({"runAsUser": 0}, _container({}))
}

test_deny_container_overrides_pod_non_root if {
	count(no_root.violation) == 1 with input as _input({"runAsNonRoot": true}, _container({"runAsNonRoot": false}))
}

test_deny_missing_security_context if {
	obj := lib_test.deployment("web", {"containers": [object.remove(lib_test.good_container("app"), ["securityContext"])]})
	count(no_root.violation) == 1 with input as lib_test.apply(obj)
}

test_deny_string_user_does_not_prove_non_root if {
	count(no_root.violation) == 1 with input as _input({}, _container({"runAsUser": "1000"}))
}

test_allow_missing_security_context_when_not_required if {
	obj := lib_test.deployment("web", {"containers": [object.remove(lib_test.good_container("app"), ["securityContext"])]})
	count(no_root.violation) == 0 with input as lib_test.apply(obj)
		with data.params.rules.no_root.require_explicit_non_root as false
}

test_deny_root_init_container_in_cronjob if {
	spec := {"initContainers": [_container({"runAsUser": 0})], "containers": [lib_test.good_container("app")]}
	count(no_root.violation) == 1 with input as lib_test.apply(lib_test.cronjob("nightly", spec))
}

test_deny_run_as_user_of_the_wrong_type if {
	# "0" would compare unequal to 0 here: the shape guard refuses it.
	c := object.union(lib_test.good_container("app"), {"securityContext": {"runAsUser": "0"}})
	d := gateway.decision with input as lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([c])))
	d.outcome == "deny"
	{[r.code, r.message] | some r in d.reasons} == {["GW-INPUT-001", "runAsUser of containers 'app' must be a number"]}
}

test_deny_run_as_non_root_of_the_wrong_type if {
	container := object.remove(lib_test.good_container("app"), ["securityContext"])
	spec := {"securityContext": {"runAsNonRoot": "true"}, "containers": [container]}
	d := gateway.decision with input as lib_test.apply(lib_test.deployment("web", spec))
	d.outcome == "deny"
	expected := ["GW-INPUT-001", "runAsNonRoot of the object's pod securityContext must be true or false"]
	expected in {[r.code, r.message] | some r in d.reasons}
}
