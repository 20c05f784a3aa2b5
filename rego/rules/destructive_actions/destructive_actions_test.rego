package rules.destructive_actions_test

import data.lib_test
import data.rules.destructive_actions

_scaled(replicas, current) := object.union(lib_test.k8s_write("k8s_scale", "scale", obj), {"current": current}) if {
	obj := lib_test.with_field(lib_test.deployment("web", {}), "/spec/replicas", replicas)
}

test_allow_scale_up if {
	count(destructive_actions.violation) == 0 with input as _scaled(3, lib_test.deployment("web", {}))
}

test_allow_creating_with_zero_replicas if {
	obj := lib_test.with_field(lib_test.deployment("web", {}), "/spec/replicas", 0)
	count(destructive_actions.violation) == 0 with input as lib_test.apply(obj)
}

test_allow_apply_keeping_zero_replicas if {
	obj := lib_test.with_field(lib_test.deployment("web", {}), "/spec/replicas", 0)
	inp := object.union(lib_test.apply(obj), {"current": obj})
	count(destructive_actions.violation) == 0 with input as inp
}

test_deny_delete_needs_approval if {
	some v in destructive_actions.violation with input as lib_test.k8s_delete("Deployment", "web")
	v.code == "OPS-DESTRUCT-001"
	v.effect == "needs_approval"
	v.approval.min_approvals == 1
}

test_deny_scale_to_zero if {
	count(destructive_actions.violation) == 1 with input as _scaled(0, lib_test.deployment("web", {}))
}

test_deny_apply_to_zero_replicas_of_running_workload if {
	obj := lib_test.with_field(lib_test.deployment("web", {}), "/spec/replicas", 0)
	inp := object.union(lib_test.apply(obj), {"current": lib_test.deployment("web", {})})
	count(destructive_actions.violation) == 1 with input as inp
}

test_deny_palette_delete if {
	count(destructive_actions.violation) == 1 with input as lib_test.palette_delete("uid-1", "dev")
}

test_deny_delete_without_kind_names_object if {
	inp := json.remove(lib_test.k8s_delete("Deployment", "web"), ["target/kind"])
	some v in destructive_actions.violation with input as inp
	contains(v.message, "deleting object 'web'")
}
