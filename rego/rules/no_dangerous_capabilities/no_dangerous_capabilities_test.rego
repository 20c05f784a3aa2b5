package rules.no_dangerous_capabilities_test

import data.lib_test
import data.rules.no_dangerous_capabilities

_with_caps(add) := object.union(
	lib_test.good_container("app"),
	{"securityContext": {"capabilities": {"add": add, "drop": ["ALL"]}}},
)

_input(container) := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([container])))

test_allow_harmless_capability if {
	count(no_dangerous_capabilities.violation) == 0 with input as _input(_with_caps(["NET_BIND_SERVICE"]))
}

test_deny_sys_admin if {
	inp := _input(_with_caps(["SYS_ADMIN"]))
	lib_test.codes(no_dangerous_capabilities.violation) == {"K8S-CAP-001"} with input as inp
}

test_deny_all_capabilities if {
	count(no_dangerous_capabilities.violation) == 1 with input as _input(_with_caps(["all"]))
}

test_deny_cap_prefixed_lowercase_name if {
	count(no_dangerous_capabilities.violation) == 1 with input as _input(_with_caps(["cap_net_admin"]))
}

test_deny_capability_in_ephemeral_container if {
	spec := {"containers": [lib_test.good_container("app")], "ephemeralContainers": [_with_caps(["SYS_PTRACE"])]}
	count(no_dangerous_capabilities.violation) == 1 with input as lib_test.apply(lib_test.pod("web", spec))
}

test_deny_capability_outside_the_default_set if {
	# NET_RAW is not in the baseline's default set, though runtimes used to grant it.
	count(no_dangerous_capabilities.violation) == 1 with input as _input(_with_caps(["NET_RAW"]))
}

test_allow_every_default_capability if {
	defaults := data.params.rules.no_dangerous_capabilities.allowed_capabilities
	count(no_dangerous_capabilities.violation) == 0 with input as _input(_with_caps(defaults))
}

test_deny_capability_in_init_container if {
	spec := {"initContainers": [_with_caps(["BPF"])], "containers": [lib_test.good_container("app")]}
	count(no_dangerous_capabilities.violation) == 1 with input as lib_test.apply(lib_test.deployment("web", spec))
}

test_deny_capabilities_of_the_wrong_type if {
	c := object.union(lib_test.good_container("app"), {"securityContext": {"capabilities": "SYS_ADMIN"}})
	reasons := no_dangerous_capabilities.violation with input as _input(c)
	{r.message | some r in reasons} == {"containers 'app' sets capabilities, which must be an object"}
}

test_deny_added_capabilities_that_are_not_a_list if {
	reasons := no_dangerous_capabilities.violation with input as _input(_with_caps("SYS_ADMIN"))
	{r.message | some r in reasons} == {"containers 'app' sets capabilities.add, which must be a list of names"}
}

test_deny_a_capability_that_is_not_a_name if {
	reasons := no_dangerous_capabilities.violation with input as _input(_with_caps([{"name": "SYS_ADMIN"}]))
	{r.message | some r in reasons} == {"containers 'app' sets capabilities.add, which must be a list of names"}
}
