package rules.pod_security_restricted_test

import data.lib_test
import data.rules.pod_security_restricted

_good := lib_test.good_container("app")

# The good container with its securityContext replaced.
_with_context(context) := object.union(object.remove(_good, ["securityContext"]), {"securityContext": context})

_hardened := _good.securityContext

_in_containers(container) := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([container])))

# The messages of the rule's findings for an input: a helper the tests share.
_messages(inp) := messages if {
	# regal ignore:with-outside-test-context
	messages := {v.message | some v in pod_security_restricted.violation} with input as inp
}

test_allow_hardened_workload if {
	count(pod_security_restricted.violation) == 0 with input as _in_containers(_good)
}

test_allow_settings_on_the_pod_cover_the_containers if {
	context := object.remove(_hardened, ["runAsNonRoot", "seccompProfile"])
	spec := {
		"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
		"containers": [_with_context(context)],
	}
	count(pod_security_restricted.violation) == 0 with input as lib_test.apply(lib_test.deployment("web", spec))
}

test_deny_restricted_findings_warn_by_default if {
	some v in pod_security_restricted.violation with input as _in_containers(_with_context({}))
	v.code == "K8S-PSS-002"
	v.effect == "warn"
}

test_deny_restricted_findings_when_enforced if {
	# One line of data turns the whole profile on.
	some v in pod_security_restricted.violation with input as _in_containers(_with_context({}))
		with data.params.modes as {"pod_security_restricted": "deny"}
	v.effect == "deny"
}

# -- Volume Types -------------------------------------------------------------------------

test_deny_volume_type_outside_the_list if {
	spec := {"containers": [_good], "volumes": [{"name": "data", "nfs": {"server": "nfs.example.com", "path": "/"}}]}
	expected := {"Volume Types: volume 'data' is of type nfs, not one of allowed_volume_types"}
	_messages(lib_test.apply(lib_test.deployment("web", spec))) == expected
}

test_deny_host_path_volume_as_a_restricted_type if {
	spec := {"containers": [_good], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
	expected := {"Volume Types: volume 'root' is of type hostPath, not one of allowed_volume_types"}
	_messages(lib_test.apply(lib_test.deployment("web", spec))) == expected
}

test_allow_core_volume_types if {
	spec := {"containers": [_good], "volumes": [
		{"name": "a", "emptyDir": {}},
		{"name": "b", "configMap": {"name": "c"}},
		{"name": "c", "secret": {"secretName": "s"}},
		{"name": "d", "persistentVolumeClaim": {"claimName": "pvc"}},
		{"name": "e", "projected": {"sources": []}},
		{"name": "f", "downwardAPI": {"items": []}},
		{"name": "g", "csi": {"driver": "x"}},
		{"name": "h", "ephemeral": {"volumeClaimTemplate": {}}},
	]}
	count(pod_security_restricted.violation) == 0 with input as lib_test.apply(lib_test.deployment("web", spec))
}

# -- Privilege Escalation -----------------------------------------------------------------

test_deny_privilege_escalation_not_set_to_false if {
	expected := {"Privilege Escalation: containers 'app' must set allowPrivilegeEscalation: false"}
	_messages(_in_containers(_with_context(object.remove(_hardened, ["allowPrivilegeEscalation"])))) == expected
}

test_deny_privilege_escalation_of_the_wrong_type if {
	expected := {"Privilege Escalation: containers 'app' must set allowPrivilegeEscalation: false"}
	_messages(_in_containers(_with_context(object.union(_hardened, {"allowPrivilegeEscalation": "false"})))) == expected
}

# -- Running as Non-root ------------------------------------------------------------------

test_deny_run_as_non_root_not_set if {
	expected := {"Running as Non-root: containers 'app' must run with runAsNonRoot: true (on the pod or the container)"}
	_messages(_in_containers(_with_context(object.remove(_hardened, ["runAsNonRoot"])))) == expected
}

test_deny_run_as_non_root_in_init_container if {
	init := object.union(lib_test.good_container("init"), {"securityContext": {"runAsNonRoot": false}})
	inp := lib_test.apply(lib_test.deployment("web", {"initContainers": [init], "containers": [_good]}))
	expected := {concat("", [
		"Running as Non-root: initContainers 'init' must run with ",
		"runAsNonRoot: true (on the pod or the container)",
	])}
	_messages(inp) == expected
}

test_deny_run_as_non_root_of_the_wrong_type if {
	expected := {"Running as Non-root: containers 'app' must run with runAsNonRoot: true (on the pod or the container)"}
	_messages(_in_containers(_with_context(object.union(_hardened, {"runAsNonRoot": "true"})))) == expected
}

# -- Seccomp ------------------------------------------------------------------------------

test_deny_seccomp_not_set if {
	expected := {concat("", [
		"Seccomp: containers 'app' must run with seccompProfile type ",
		"RuntimeDefault or Localhost (on the pod or the container)",
	])}
	_messages(_in_containers(_with_context(object.remove(_hardened, ["seccompProfile"])))) == expected
}

test_deny_seccomp_unconfined_in_ephemeral_container if {
	unconfined := {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}
	debug := object.union(lib_test.good_container("debug"), unconfined)
	inp := lib_test.apply(lib_test.pod("web", {"containers": [_good], "ephemeralContainers": [debug]}))
	expected := {concat("", [
		"Seccomp: ephemeralContainers 'debug' must run with seccompProfile ",
		"type RuntimeDefault or Localhost (on the pod or the container)",
	])}
	_messages(inp) == expected
}

test_deny_seccomp_of_the_wrong_type if {
	expected := {concat("", [
		"Seccomp: containers 'app' must run with seccompProfile type ",
		"RuntimeDefault or Localhost (on the pod or the container)",
	])}
	_messages(_in_containers(_with_context(object.union(_hardened, {"seccompProfile": "RuntimeDefault"})))) == expected
}

# -- Capabilities -------------------------------------------------------------------------

test_deny_capabilities_not_dropped if {
	expected := {"Capabilities: containers 'app' must drop ALL capabilities"}
	_messages(_in_containers(_with_context(object.remove(_hardened, ["capabilities"])))) == expected
}

test_deny_added_capability_other_than_net_bind_service if {
	context := object.union(_hardened, {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}})
	expected := {"Capabilities: containers 'app' adds CHOWN; only allowed_added_capabilities may be added"}
	_messages(_in_containers(_with_context(context))) == expected
}

test_allow_net_bind_service if {
	context := object.union(_hardened, {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
	count(pod_security_restricted.violation) == 0 with input as _in_containers(_with_context(context))
}

test_deny_capabilities_of_the_wrong_type if {
	expected := {"Capabilities: containers 'app' must drop ALL capabilities"}
	_messages(_in_containers(_with_context(object.union(_hardened, {"capabilities": {"drop": "ALL"}})))) == expected
}

# -- Windows pods -------------------------------------------------------------------------

test_allow_windows_pods_exempt_from_linux_controls if {
	context := {"runAsNonRoot": true}
	spec := {"os": {"name": "windows"}, "containers": [_with_context(context)]}
	_messages(lib_test.apply(lib_test.deployment("web", spec))) == set()
}

# -- the fast path ------------------------------------------------------------------------

_hardened_pod(container) := lib_test.apply(lib_test.deployment("web", {
	"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
	"containers": [container],
}))

test_allow_compliant_only_for_the_hardened_form if {
	# The fast path holds for the hardened form (lib.hardened) only; anything else is
	# judged control by control, which the tests above cover.
	pod_security_restricted._compliant with input as _hardened_pod(_good)
	not pod_security_restricted._compliant with input as _in_containers(_good)
	undropped := _with_context(object.remove(_hardened, ["capabilities"]))
	not pod_security_restricted._compliant with input as _hardened_pod(undropped)

	# Two distinct hardened contexts: the general form of lib.hardened.
	read_only := object.union(_with_context(object.union(_hardened, {"readOnlyRootFilesystem": true})), {"name": "ro"})
	two := _hardened_pod(_good)
	both := json.patch(two, [{"op": "add", "path": "/object/spec/template/spec/containers/-", "value": read_only}])
	pod_security_restricted._compliant with input as both
	mixed := json.patch(two, [{"op": "add", "path": "/object/spec/template/spec/containers/-", "value": undropped}])
	not pod_security_restricted._compliant with input as mixed
}

test_deny_hardened_pod_with_a_restricted_volume_type if {
	pod := _hardened_pod(_good)
	inp := json.patch(pod, [{
		"op": "add", "path": "/object/spec/template/spec/volumes",
		"value": [{"name": "data", "nfs": {"server": "nfs.example.com", "path": "/"}}],
	}])
	not pod_security_restricted._compliant with input as inp
	_messages(inp) == {"Volume Types: volume 'data' is of type nfs, not one of allowed_volume_types"}
}
