package rules.pod_security_baseline_test

import data.lib_test
import data.rules.pod_security_baseline

_good := lib_test.good_container("app")

# A container with these securityContext settings laid over the good ones.
_with_context(settings) := object.union(_good, {"securityContext": settings})

_deployment(spec) := lib_test.apply(lib_test.deployment("web", spec))

_in_containers(container) := _deployment(lib_test.pod_spec([container]))

# The pod's own securityContext.
_in_pod(settings) := _deployment({"securityContext": settings, "containers": [_good]})

# The messages of the rule's findings for an input: a helper the tests share.
_messages(inp) := messages if {
	# regal ignore:with-outside-test-context
	messages := {v.message | some v in pod_security_baseline.violation} with input as inp
}

test_allow_hardened_workload if {
	count(pod_security_baseline.violation) == 0 with input as _in_containers(_good)
}

test_allow_workload_without_security_settings if {
	# Baseline is about what a pod asks for: asking for nothing is allowed (restricted
	# is another rule).
	bare := object.remove(_good, ["securityContext"])
	count(pod_security_baseline.violation) == 0 with input as _in_containers(bare)
}

# -- HostProcess --------------------------------------------------------------------------

test_deny_host_process_container if {
	inp := _in_containers(_with_context({"windowsOptions": {"hostProcess": true}}))
	_messages(inp) == {"HostProcess: containers 'app' sets windowsOptions.hostProcess: true"}
}

test_deny_host_process_pod if {
	inp := _in_pod({"windowsOptions": {"hostProcess": true}})
	_messages(inp) == {"HostProcess: the pod sets windowsOptions.hostProcess: true"}
}

test_allow_host_process_false if {
	inp := _in_containers(_with_context({"windowsOptions": {"hostProcess": false, "runAsUserName": "app"}}))
	count(pod_security_baseline.violation) == 0 with input as inp
}

test_deny_host_process_of_the_wrong_type if {
	expected := {"HostProcess: containers 'app' sets windowsOptions.hostProcess to 'true', which must be true or false"}
	_messages(_in_containers(_with_context({"windowsOptions": {"hostProcess": "true"}}))) == expected
	_messages(_in_pod({"windowsOptions": "host"})) == {"HostProcess: the pod sets windowsOptions, which must be an object"}
}

# -- Host Ports ---------------------------------------------------------------------------

_with_port(port) := object.union(_good, {"ports": [port]})

test_deny_host_port if {
	inp := _in_containers(_with_port({"containerPort": 8080, "hostPort": 8080}))
	_messages(inp) == {"Host Ports: containers 'app' binds host port 8080, which is not in allowed_host_ports"}
}

test_deny_host_port_in_init_container if {
	init := object.union(lib_test.good_container("init"), {"ports": [{"containerPort": 53, "hostPort": 53}]})
	inp := _deployment({"initContainers": [init], "containers": [_good]})
	_messages(inp) == {"Host Ports: initContainers 'init' binds host port 53, which is not in allowed_host_ports"}
}

test_allow_host_port_zero_or_listed if {
	zero := _in_containers(_with_port({"containerPort": 80, "hostPort": 0}))
	count(pod_security_baseline.violation) == 0 with input as zero
	listed := _in_containers(_with_port({"containerPort": 80, "hostPort": 80}))
	count(pod_security_baseline.violation) == 0 with input as listed
		with data.params.rules.pod_security_baseline.allowed_host_ports as [80]
}

test_deny_host_port_of_the_wrong_type if {
	expected := {"Host Ports: containers 'app' sets hostPort to '80', which must be a port number"}
	_messages(_in_containers(_with_port({"containerPort": 80, "hostPort": "80"}))) == expected

	# Ports given as one object instead of a list: its hostPort is read all the same.
	single := object.union(_good, {"ports": {"containerPort": 80, "hostPort": 80}})
	expected2 := {"Host Ports: containers 'app' binds host port 80, which is not in allowed_host_ports"}
	_messages(_in_containers(single)) == expected2
	keyed := object.union(_good, {"ports": {"http": {"containerPort": 80, "hostPort": 80}}})
	_messages(_in_containers(keyed)) == expected2
}

# -- AppArmor -----------------------------------------------------------------------------

test_deny_unconfined_apparmor_profile if {
	inp := _in_containers(_with_context({"appArmorProfile": {"type": "Unconfined"}}))
	expected := {concat("", [
		"AppArmor: containers 'app' sets appArmorProfile type 'Unconfined'; ",
		"only RuntimeDefault or Localhost are allowed",
	])}
	_messages(inp) == expected
}

test_deny_unconfined_apparmor_profile_on_the_pod if {
	expected := {concat("", [
		"AppArmor: the pod sets appArmorProfile type 'Unconfined'; only ",
		"RuntimeDefault or Localhost are allowed",
	])}
	_messages(_in_pod({"appArmorProfile": {"type": "Unconfined"}})) == expected
}

test_allow_runtime_default_and_localhost_apparmor if {
	default_profile := _in_containers(_with_context({"appArmorProfile": {"type": "RuntimeDefault"}}))
	count(pod_security_baseline.violation) == 0 with input as default_profile
	local := _in_pod({"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor-example"}})
	count(pod_security_baseline.violation) == 0 with input as local
}

test_deny_unconfined_apparmor_annotation if {
	spec := lib_test.pod_spec([_good])
	obj := json.patch(lib_test.deployment("web", spec), [{
		"op": "add", "path": "/spec/template/metadata/annotations",
		"value": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"},
	}])
	expected := {"AppArmor: pod annotation container.apparmor.security.beta.kubernetes.io/app: 'unconfined'"}
	_messages(lib_test.apply(obj)) == expected
}

test_deny_unconfined_apparmor_annotation_in_every_pod_template if {
	annotations := {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
	expected := {"AppArmor: pod annotation container.apparmor.security.beta.kubernetes.io/app: 'unconfined'"}
	cron := lib_test.cronjob("nightly", lib_test.pod_spec([_good]))
	in_cron := {"op": "add", "path": "/spec/jobTemplate/spec/template/metadata", "value": {"annotations": annotations}}
	_messages(lib_test.apply(json.patch(cron, [in_cron]))) == expected
	template := {
		"apiVersion": "v1",
		"kind": "PodTemplate",
		"metadata": {"name": "web", "namespace": "dev"},
		"template": {"metadata": {"annotations": annotations}, "spec": lib_test.pod_spec([_good])},
	}
	_messages(lib_test.apply(template)) == expected
}

test_allow_null_pod_annotations if {
	patch := {"op": "add", "path": "/metadata/annotations", "value": null}
	pod := json.patch(lib_test.pod("web", lib_test.pod_spec([_good])), [patch])
	count(pod_security_baseline.violation) == 0 with input as lib_test.apply(pod)
}

test_allow_runtime_default_and_localhost_apparmor_annotations if {
	obj := json.patch(lib_test.deployment("web", lib_test.pod_spec([_good])), [{
		"op": "add", "path": "/spec/template/metadata/annotations",
		"value": {
			"container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
			"container.apparmor.security.beta.kubernetes.io/sidecar": "localhost/k8s-apparmor-example",
		},
	}])
	count(pod_security_baseline.violation) == 0 with input as lib_test.apply(obj)
}

test_deny_apparmor_profile_of_the_wrong_type if {
	expected := {"AppArmor: containers 'app' sets appArmorProfile, which must be an object"}
	_messages(_in_containers(_with_context({"appArmorProfile": "Unconfined"}))) == expected
	expected2 := {"AppArmor: containers 'app' sets appArmorProfile type 1; only RuntimeDefault or Localhost are allowed"}
	_messages(_in_containers(_with_context({"appArmorProfile": {"type": 1}}))) == expected2
}

test_deny_pod_annotations_of_the_wrong_type if {
	text := "container.apparmor.security.beta.kubernetes.io/app=unconfined"
	patch := {"op": "add", "path": "/metadata/annotations", "value": text}
	pod := json.patch(lib_test.pod("web", lib_test.pod_spec([_good])), [patch])
	_messages(lib_test.apply(pod)) == {"AppArmor: pod annotations must be an object of strings"}
}

# -- SELinux ------------------------------------------------------------------------------

test_deny_custom_selinux_type if {
	expected := {"SELinux: containers 'app' type 'spc_t' is not in allowed_selinux_types"}
	_messages(_in_containers(_with_context({"seLinuxOptions": {"type": "spc_t"}}))) == expected
}

test_deny_selinux_user_and_role if {
	inp := _in_pod({"seLinuxOptions": {"user": "system_u", "role": "system_r"}})
	_messages(inp) == {"SELinux: the pod sets a custom user 'system_u'; sets a custom role 'system_r'"}
}

test_allow_selinux_allowed_type_and_level if {
	inp := _in_containers(_with_context({"seLinuxOptions": {"type": "container_init_t", "level": "s0:c123,c456"}}))
	count(pod_security_baseline.violation) == 0 with input as inp
}

test_deny_selinux_options_of_the_wrong_type if {
	expected := {"SELinux: containers 'app' sets seLinuxOptions, which must be an object"}
	_messages(_in_containers(_with_context({"seLinuxOptions": "spc_t"}))) == expected
	expected2 := {`SELinux: the pod type ["container_t"] is not in allowed_selinux_types`}
	_messages(_in_pod({"seLinuxOptions": {"type": ["container_t"]}})) == expected2
}

# -- /proc Mount Type ---------------------------------------------------------------------

test_deny_unmasked_proc_mount if {
	expected := {"/proc Mount Type: containers 'app' sets procMount 'Unmasked'; only Default is allowed"}
	_messages(_in_containers(_with_context({"procMount": "Unmasked"}))) == expected
}

test_deny_unmasked_proc_mount_in_ephemeral_container if {
	debug := object.union(lib_test.good_container("debug"), {"securityContext": {"procMount": "Unmasked"}})
	inp := lib_test.apply(lib_test.pod("web", {"containers": [_good], "ephemeralContainers": [debug]}))
	_messages(inp) == {"/proc Mount Type: ephemeralContainers 'debug' sets procMount 'Unmasked'; only Default is allowed"}
}

test_allow_default_proc_mount if {
	count(pod_security_baseline.violation) == 0 with input as _in_containers(_with_context({"procMount": "Default"}))
}

test_deny_proc_mount_of_the_wrong_type if {
	expected := {`/proc Mount Type: containers 'app' sets procMount {"type":"Default"}; only Default is allowed`}
	_messages(_in_containers(_with_context({"procMount": {"type": "Default"}}))) == expected
}

# -- Seccomp ------------------------------------------------------------------------------

test_deny_unconfined_seccomp_container if {
	expected := {concat("", [
		"Seccomp: containers 'app' sets seccompProfile type 'Unconfined'; only ",
		"RuntimeDefault or Localhost are allowed",
	])}
	_messages(_in_containers(_with_context({"seccompProfile": {"type": "Unconfined"}}))) == expected
}

test_deny_unconfined_seccomp_pod if {
	expected := {"Seccomp: the pod sets seccompProfile type 'Unconfined'; only RuntimeDefault or Localhost are allowed"}
	_messages(_in_pod({"seccompProfile": {"type": "Unconfined"}})) == expected
}

test_deny_unconfined_seccomp_annotation if {
	obj := json.patch(lib_test.pod("web", lib_test.pod_spec([_good])), [{
		"op": "add", "path": "/metadata/annotations",
		"value": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
	}])
	_messages(lib_test.apply(obj)) == {"Seccomp: pod annotation seccomp.security.alpha.kubernetes.io/pod: 'unconfined'"}
}

test_allow_localhost_seccomp if {
	inp := _in_pod({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}})
	count(pod_security_baseline.violation) == 0 with input as inp
}

test_deny_seccomp_profile_of_the_wrong_type if {
	expected := {"Seccomp: the pod sets seccompProfile, which must be an object"}
	_messages(_in_pod({"seccompProfile": "Unconfined"})) == expected
}

# -- Sysctls ------------------------------------------------------------------------------

test_deny_unsafe_sysctl if {
	sysctls := [{"name": "kernel.msgmax", "value": "65536"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]
	inp := _in_pod({"sysctls": sysctls})
	_messages(inp) == {"Sysctls: the pod sets sysctls kernel.msgmax, outside the safe set in allowed_sysctls"}
}

test_allow_safe_sysctls if {
	inp := _in_pod({"sysctls": [
		{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"},
		{"name": "net.ipv4.tcp_keepalive_time", "value": "600"},
	]})
	count(pod_security_baseline.violation) == 0 with input as inp
}

test_deny_sysctls_of_the_wrong_type if {
	expected := {"Sysctls: the pod sets sysctls, which must be a list of {name, value} objects"}
	_messages(_in_pod({"sysctls": {"kernel.msgmax": "65536"}})) == expected
	_messages(_in_pod({"sysctls": ["kernel.msgmax=65536"]})) == expected
}

# -- Host Probes / Lifecycle Hooks --------------------------------------------------------

test_deny_probe_host if {
	c := object.union(_good, {"livenessProbe": {"httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}})
	expected := {concat("", [
		"Host Probes / Lifecycle Hooks: containers 'app' livenessProbe httpGet ",
		"sets host '169.254.169.254'; probes and hooks may only reach the pod ",
		"itself",
	])}
	_messages(_in_containers(c)) == expected
}

test_deny_lifecycle_hook_host if {
	c := object.union(_good, {"lifecycle": {"preStop": {"tcpSocket": {"host": "10.0.0.1", "port": 22}}}})
	expected := {concat("", [
		"Host Probes / Lifecycle Hooks: containers 'app' lifecycle.preStop ",
		"tcpSocket sets host '10.0.0.1'; probes and hooks may only reach the ",
		"pod itself",
	])}
	_messages(_in_containers(c)) == expected
}

test_allow_probes_without_host if {
	c := object.union(_good, {
		"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
		"startupProbe": {"tcpSocket": {"port": 8080, "host": ""}},
		"lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
	})
	count(pod_security_baseline.violation) == 0 with input as _in_containers(c)
}

test_deny_probe_of_the_wrong_type if {
	expected := {"Host Probes / Lifecycle Hooks: containers 'app' readinessProbe must be an object"}
	_messages(_in_containers(object.union(_good, {"readinessProbe": "GET /ready"}))) == expected
	expected2 := {"Host Probes / Lifecycle Hooks: containers 'app' lifecycle. must be an object"}
	_messages(_in_containers(object.union(_good, {"lifecycle": ["preStop"]}))) == expected2
	expected3 := {"Host Probes / Lifecycle Hooks: containers 'app' livenessProbe httpGet must be an object"}
	_messages(_in_containers(object.union(_good, {"livenessProbe": {"httpGet": "http://10.0.0.1/"}}))) == expected3
}

# -- every place a pod spec lives ---------------------------------------------------------

test_deny_in_a_cronjob_template if {
	inp := lib_test.apply(lib_test.cronjob("nightly", lib_test.pod_spec([_with_context({"procMount": "Unmasked"})])))
	count(pod_security_baseline.violation) == 1 with input as inp
}

test_deny_in_a_custom_resource_with_a_pod_template if {
	obj := {
		"apiVersion": "example.com/v1",
		"kind": "Worker",
		"metadata": {"name": "w", "namespace": "dev"},
		"spec": {"template": {"spec": {"containers": [_with_context({"seLinuxOptions": {"role": "sysadm_r"}})]}}},
	}
	count(pod_security_baseline.violation) == 1 with input as lib_test.apply(obj)
}

test_allow_reads_are_not_inspected if {
	pod := lib_test.pod("web", lib_test.pod_spec([_with_context({"procMount": "Unmasked"})]))
	read := object.union(lib_test.k8s_read("k8s_get", "get", "Pod"), {"object": pod})
	count(pod_security_baseline.violation) == 0 with input as read
}

# -- the fast path ------------------------------------------------------------------------

test_allow_clean_only_when_nothing_is_suspect if {
	# _clean holds exactly when no body below could report: the bodies run only when it
	# fails. The fuzz in tests/integration/test_pod_security_fast_paths.py holds the two
	# together on many bent workloads; these are the hand-picked ones.
	pod_security_baseline._clean with input as _in_containers(_good)
	not pod_security_baseline._clean with input as _in_containers(_with_context({"procMount": "Default"}))
	not pod_security_baseline._clean with input as _in_containers(_with_port({"containerPort": 1, "hostPort": 1}))
	not pod_security_baseline._clean with input as _in_pod({"sysctls": []})
	single_port := object.union(_good, {"ports": {"hostPort": 1}})
	not pod_security_baseline._clean with input as _in_containers(single_port)
	every field in ["livenessProbe", "readinessProbe", "startupProbe", "lifecycle"] {
		not pod_security_baseline._clean with input as _in_containers(object.union(_good, {field: {}}))
	}
}

test_allow_clean_is_not_fooled_by_a_context_that_is_not_an_object if {
	# known_action refuses the workload; the fast path must not vouch for it either.
	bare := object.remove(_good, ["securityContext"])
	not pod_security_baseline._clean with input as _in_containers(object.union(bare, {"securityContext": "x"}))
}

test_allow_localhost_and_runtime_default_seccomp_annotations if {
	obj := json.patch(lib_test.pod("web", lib_test.pod_spec([_good])), [{
		"op": "add", "path": "/metadata/annotations",
		"value": {
			"seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
			"container.seccomp.security.alpha.kubernetes.io/app": "localhost/profile.json",
		},
	}])
	count(pod_security_baseline.violation) == 0 with input as lib_test.apply(obj)
}

test_deny_unconfined_container_seccomp_annotation if {
	obj := json.patch(lib_test.pod("web", lib_test.pod_spec([_good])), [{
		"op": "add", "path": "/metadata/annotations",
		"value": {"container.seccomp.security.alpha.kubernetes.io/app": "unconfined"},
	}])
	expected := {"Seccomp: pod annotation container.seccomp.security.alpha.kubernetes.io/app: 'unconfined'"}
	_messages(lib_test.apply(obj)) == expected
}
