package rules.known_action_test

import data.gateway
import data.lib_test
import data.rules.known_action

_write := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))

_messages(violations) := {v.message | some v in violations}

test_allow_well_formed_actions if {
	count(known_action.violation) == 0 with input as _write
	count(known_action.violation) == 0 with input as lib_test.k8s_read("k8s_get", "get", "Pod")
	count(known_action.violation) == 0 with input as lib_test.k8s_delete("Pod", "web")
	count(known_action.violation) == 0 with input as lib_test.palette_create("edge", [])
	count(known_action.violation) == 0 with input as lib_test.palette_delete("uid-1", "dev")
}

test_deny_unknown_tool if {
	some v in known_action.violation with input as lib_test.with_field(_write, "/tool", "k8s_exec")
	v.code == "GW-INPUT-001"
	v.message == "tool 'k8s_exec' is not in the catalog"
}

test_deny_meta_tool_as_action if {
	count(known_action.violation) > 0 with input as lib_test.with_field(_write, "/tool", "gateway_action")
}

test_deny_effect_that_contradicts_catalog if {
	inp := lib_test.with_field(lib_test.k8s_delete("Pod", "web"), "/effect", "read")
	_messages(known_action.violation) == {"effect of tool 'k8s_delete' must be 'delete'"} with input as inp
}

test_deny_operation_and_backend_that_contradict_catalog if {
	inp := lib_test.with_field(lib_test.with_field(_write, "/operation", "scale"), "/backend", "palette")
	expected := {
		"operation of tool 'k8s_apply' must be 'apply'",
		"backend of tool 'k8s_apply' must be 'kubernetes'",
	}
	_messages(known_action.violation) == expected with input as inp
}

test_deny_unknown_effect if {
	inp := lib_test.with_field(_write, "/effect", "exec")
	"effect must be read, write or delete" in _messages(known_action.violation) with input as inp
}

test_deny_missing_effect if {
	inp := json.remove(_write, ["effect"])
	"effect must be read, write or delete" in _messages(known_action.violation) with input as inp
}

test_deny_wrong_version if {
	inp := lib_test.with_field(_write, "/version", 2)
	_messages(known_action.violation) == {"version must be 1"} with input as inp
}

test_deny_missing_version if {
	"version must be 1" in _messages(known_action.violation) with input as json.remove(_write, ["version"])
}

test_deny_missing_tool if {
	"tool is missing" in _messages(known_action.violation) with input as json.remove(_write, ["tool"])
}

test_deny_missing_principal if {
	inp := json.remove(_write, ["principal"])
	"principal is missing or malformed" in _messages(known_action.violation) with input as inp
}

test_deny_malformed_principal if {
	some path, value in {"/principal/subject": "", "/principal/groups": [1], "/principal/authenticated": "yes"}
	inp := lib_test.with_field(_write, path, value)
	_messages(known_action.violation) == {"principal is missing or malformed"} with input as inp
}

test_deny_missing_target if {
	"target is missing" in _messages(known_action.violation) with input as json.remove(_write, ["target"])
}

test_deny_malformed_args if {
	inp := lib_test.with_field(_write, "/args", "x")
	"args must be an object" in _messages(known_action.violation) with input as inp
}

test_deny_malformed_approvals if {
	inp := lib_test.with_field(_write, "/approvals", {})
	"approvals must be a list" in _messages(known_action.violation) with input as inp
}

test_deny_kubernetes_change_without_kind if {
	inp := json.remove(lib_test.k8s_delete("Pod", "web"), ["target/kind"])
	"a Kubernetes change needs the target kind" in _messages(known_action.violation) with input as inp
}

test_deny_kubernetes_write_without_object if {
	inp := lib_test.with_field(_write, "/object", null)
	msg := "a Kubernetes write needs the object as it would be written"
	msg in _messages(known_action.violation) with input as inp
}

test_deny_palette_create_without_definition if {
	inp := lib_test.with_field(lib_test.palette_create("edge", []), "/object", null)
	msg := "creating a Palette cluster needs the cluster definition"
	msg in _messages(known_action.violation) with input as inp
}

test_deny_palette_delete_without_uid if {
	inp := lib_test.with_field(lib_test.palette_delete("uid-1", "dev"), "/target/cluster", null)
	"a Palette change needs the target cluster uid" in _messages(known_action.violation) with input as inp
}

test_deny_object_kind_contradicting_target if {
	inp := lib_test.with_field(_write, "/target/kind", "ConfigMap")
	msg := "object kind 'Deployment' contradicts target kind 'ConfigMap'"
	msg in _messages(known_action.violation) with input as inp
}

test_deny_input_that_is_not_an_object if {
	expected := {
		"the action is not a JSON object",
		"tool is missing",
		"effect must be read, write or delete",
		"principal is missing or malformed",
		"target is missing",
	}
	_messages(known_action.violation) == expected with input as "garbage"
}

# The fast path for well-formed actions, taken by each shape, still sees every bend.
test_deny_malformations_in_every_shape if {
	shapes := [_write, lib_test.k8s_read("k8s_get", "get", "Pod"), lib_test.k8s_delete("Pod", "web")]
	bends := {
		"/version": 2,
		"/tool": "k8s_exec",
		"/principal/subject": " ",
		"/principal/groups": ["sre", 1],
		"/principal/authenticated": null,
		"/args": [],
		"/approvals": {},
		"/target": "x",
	}
	every shape in shapes {
		every path, value in bends {
			count(known_action.violation) > 0 with input as lib_test.with_field(shape, path, value)
		}
	}
}

test_allow_object_kind_in_other_case if {
	count(known_action.violation) == 0 with input as lib_test.with_field(_write, "/object/kind", "deployment")
}

test_deny_read_carrying_contradicting_object if {
	inp := lib_test.with_field(lib_test.k8s_read("k8s_get", "get", "Pod"), "/object", {"kind": "Secret"})
	"object kind 'Secret' contradicts target kind 'Pod'" in _messages(known_action.violation) with input as inp
}

test_allow_delete_carrying_the_live_object if {
	inp := lib_test.with_field(lib_test.k8s_delete("Pod", "web"), "/object", {"kind": "Pod", "metadata": {"name": "web"}})
	count(known_action.violation) == 0 with input as inp
}

test_allow_palette_read if {
	inp := object.union(lib_test.palette_delete("uid-1", "dev"), {
		"tool": "palette_get_cluster",
		"operation": "get_cluster",
		"effect": "read",
		"object": null,
	})
	count(known_action.violation) == 0 with input as inp
}

test_deny_blank_kind_when_the_object_names_none if {
	inp := json.remove(lib_test.with_field(_write, "/target/kind", " "), ["object/kind"])
	"a Kubernetes change needs the target kind" in _messages(known_action.violation) with input as inp
}

test_deny_container_that_is_not_an_object if {
	spec := lib_test.pod_spec([lib_test.good_container("app"), "nginx:latest"])
	inp := lib_test.apply(lib_test.deployment("web", spec))
	msg := "containers in the object's pod spec must be a list of objects"
	_messages(known_action.violation) == {msg} with input as inp
}

test_deny_container_lists_that_are_not_lists if {
	spec := object.union(lib_test.pod_spec([lib_test.good_container("app")]), {
		"initContainers": "busybox",
		"ephemeralContainers": {"debug": lib_test.good_container("debug")},
	})
	inp := lib_test.apply(lib_test.cronjob("nightly", spec))
	expected := {
		"initContainers in the object's pod spec must be a list of objects",
		"ephemeralContainers in the object's pod spec must be a list of objects",
	}
	_messages(known_action.violation) == expected with input as inp
}

test_allow_null_and_empty_container_lists if {
	spec := object.union(lib_test.pod_spec([lib_test.good_container("app")]), {
		"initContainers": null,
		"ephemeralContainers": [],
	})
	count(known_action.violation) == 0 with input as lib_test.apply(lib_test.pod("web", spec))
}

_with_context(context) := object.union(lib_test.good_container("app"), {"securityContext": context})

_apply_spec(spec) := lib_test.apply(lib_test.deployment("web", spec))

test_deny_container_security_context_that_is_not_an_object if {
	bare := object.remove(lib_test.good_container("app"), ["securityContext"])
	container := object.union(bare, {"securityContext": "privileged", "ports": [{"containerPort": 80}]})
	spec := lib_test.pod_spec([container, lib_test.good_container("sidecar")])
	expected := {"securityContext of containers 'app' must be an object"}
	_messages(known_action.violation) == expected with input as _apply_spec(spec)
}

test_deny_pod_security_context_that_is_not_an_object if {
	spec := {"securityContext": ["runAsNonRoot"], "containers": [lib_test.good_container("app")]}
	expected := {"securityContext in the object's pod spec must be an object"}
	_messages(known_action.violation) == expected with input as _apply_spec(spec)
}

test_allow_volumes_of_another_shape_to_the_volume_rules if {
	# The volume rules read a volume list given as an object; a volume that is not an
	# object mounts nothing. Neither is the shape guard's.
	listed := {"containers": [lib_test.good_container("app")], "volumes": ["hostPath:/"]}
	count(known_action.violation) == 0 with input as _apply_spec(listed)
	keyed := {"containers": [lib_test.good_container("app")], "volumes": {"root": {"hostPath": {"path": "/"}}}}
	count(known_action.violation) == 0 with input as _apply_spec(keyed)
	d := gateway.decision with input as _apply_spec(keyed)
	"K8S-HOST-002" in {r.code | some r in d.reasons}
}

test_deny_malformed_lists_of_a_hardened_workload if {
	# lib.hardened spares a workload the context checks, never the list checks.
	spec := {
		"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [lib_test.good_container("app")],
		"initContainers": "busybox",
	}
	expected := {"initContainers in the object's pod spec must be a list of objects"}
	_messages(known_action.violation) == expected with input as _apply_spec(spec)
}

test_deny_security_settings_of_the_wrong_type if {
	# Each would compare unequal to true, false or 0 in its rule and pass unseen.
	expected := {"privileged of containers 'app' must be true or false"}
	privileged := _apply_spec(lib_test.pod_spec([_with_context({"privileged": "true"})]))
	_messages(known_action.violation) == expected with input as privileged
	expected2 := {"allowPrivilegeEscalation of containers 'app' must be true or false"}
	escalation := _apply_spec(lib_test.pod_spec([_with_context({"allowPrivilegeEscalation": 1})]))
	_messages(known_action.violation) == expected2 with input as escalation
	expected3 := {"runAsUser of containers 'app' must be a number"}
	user := _apply_spec(lib_test.pod_spec([_with_context({"runAsUser": "0"})]))
	_messages(known_action.violation) == expected3 with input as user
	expected4 := {"runAsNonRoot of the object's pod securityContext must be true or false"}
	non_root := _apply_spec({"securityContext": {"runAsNonRoot": "false"}, "containers": [lib_test.good_container("app")]})
	_messages(known_action.violation) == expected4 with input as non_root
}

test_allow_security_settings_of_the_right_type if {
	spec := {
		"hostNetwork": false,
		"securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
		"containers": [_with_context({"privileged": false, "runAsUser": 1000})],
	}
	count(known_action.violation) == 0 with input as _apply_spec(spec)
}

_rollback := object.union(lib_test.k8s_delete("Deployment", "web"), {
	"tool": "gateway_rollback",
	"operation": "rollback",
	"args": {"rollback_of": "6f1d2c9e-0000-4000-8000-000000000001", "original_tool": "k8s_apply"},
})

test_allow_a_rollback_as_what_it_does if {
	count(known_action.violation) == 0 with input as _rollback
	count(known_action.violation) == 0 with input as object.union(_rollback, {"effect": "write", "object": {}})
	palette := object.union(lib_test.palette_delete("uid-1", "dev"), {
		"tool": "gateway_rollback",
		"operation": "rollback",
		"args": _rollback.args,
	})
	count(known_action.violation) == 0 with input as palette
}

test_deny_a_rollback_outside_its_backends_and_effects if {
	inp := object.union(_rollback, {"backend": "gateway", "effect": "read"})
	expected := {
		"backend of tool 'gateway_rollback' must be one of kubernetes, palette",
		"effect of tool 'gateway_rollback' must be one of write, delete",
	}
	_messages(known_action.violation) == expected with input as inp
}

test_deny_a_rollback_that_names_no_action if {
	some missing in [
		json.remove(_rollback, ["args/rollback_of"]),
		lib_test.with_field(_rollback, "/args/rollback_of", " "),
	]
	msg := "a rollback must name the action it undoes (args.rollback_of)"
	_messages(known_action.violation) == {msg} with input as missing
}

test_deny_another_operation_for_the_rollback_tool if {
	inp := lib_test.with_field(_rollback, "/operation", "delete")
	"operation of tool 'gateway_rollback' must be 'rollback'" in _messages(known_action.violation) with input as inp
}
