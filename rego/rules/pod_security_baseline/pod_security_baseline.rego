# METADATA
# title: Pod Security Standards baseline
# description: >-
#   The baseline controls of the Kubernetes Pod Security Standards that have no rule of
#   their own (privileged, host namespaces, hostPath volumes and added capabilities do):
#   Windows HostProcess; host ports outside allowed_host_ports (data, empty: none);
#   AppArmor other than RuntimeDefault or Localhost, in appArmorProfile or the legacy
#   annotation; an SELinux type outside allowed_selinux_types, or any SELinux user or
#   role; a /proc mount other than Default; seccomp Unconfined, in seccompProfile or the
#   legacy annotation; sysctls outside allowed_sysctls (the standard's safe set); a host
#   in a probe or lifecycle handler. The pod, containers, init and ephemeral containers,
#   in every pod template. A setting of the wrong type is refused, never skipped. Each
#   message starts with the control it breaks.
# custom:
#   code: K8S-PSS-001
#   severity: high
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "baseline/HostProcess"
#       tests:
#         - test_deny_host_process_container
#         - test_deny_host_process_pod
#         - test_deny_host_process_of_the_wrong_type
#     - control: "baseline/Host Ports"
#       tests:
#         - test_deny_host_port
#         - test_deny_host_port_in_init_container
#         - test_deny_host_port_of_the_wrong_type
#     - control: "baseline/AppArmor"
#       tests:
#         - test_deny_unconfined_apparmor_profile
#         - test_deny_unconfined_apparmor_profile_on_the_pod
#         - test_deny_unconfined_apparmor_annotation
#         - test_deny_unconfined_apparmor_annotation_in_every_pod_template
#         - test_deny_apparmor_profile_of_the_wrong_type
#         - test_deny_pod_annotations_of_the_wrong_type
#     - control: "baseline/SELinux"
#       tests:
#         - test_deny_custom_selinux_type
#         - test_deny_selinux_user_and_role
#         - test_deny_selinux_options_of_the_wrong_type
#     - control: "baseline//proc Mount Type"
#       tests:
#         - test_deny_unmasked_proc_mount
#         - test_deny_unmasked_proc_mount_in_ephemeral_container
#         - test_deny_proc_mount_of_the_wrong_type
#     - control: "baseline/Seccomp"
#       tests:
#         - test_deny_unconfined_seccomp_container
#         - test_deny_unconfined_seccomp_pod
#         - test_deny_unconfined_seccomp_annotation
#         - test_deny_unconfined_container_seccomp_annotation
#         - test_deny_seccomp_profile_of_the_wrong_type
#     - control: "baseline/Sysctls"
#       tests:
#         - test_deny_unsafe_sysctl
#         - test_deny_sysctls_of_the_wrong_type
#     - control: "baseline/Host Probes / Lifecycle Hooks"
#       tests:
#         - test_deny_probe_host
#         - test_deny_lifecycle_hook_host
#         - test_deny_probe_of_the_wrong_type
package rules.pod_security_baseline

import data.lib

_params := data.params.rules.pod_security_baseline

_reason := lib.reason_template(rego.metadata.chain())

_control := {
	"windowsOptions": "HostProcess",
	"appArmorProfile": "AppArmor",
	"seLinuxOptions": "SELinux",
	"procMount": "/proc Mount Type",
	"seccompProfile": "Seccomp",
	"sysctls": "Sysctls",
}

# The common case: nothing suspect. A hardened workload (lib.hardened) sets no judged
# setting but an allowed seccomp profile, so only its ports, probes and annotations are
# looked at; any other workload is looked at on its distinct container contexts and its
# pods too. A suspect covers the findings of its controls, which are listed only for a
# suspect workload (a test holds the two together).
_clean if not _suspect

# The same, positively: the violation body looks it up rather than negating _clean. A
# boolean of several bodies, not a set: OPA stops at the first body that holds.
_suspect if {
	lib.soft
	some context in lib.container_contexts
	_context_suspect(context)
}

_suspect if {
	lib.soft
	some spec in lib.write_pod_specs
	_context_suspect(object.get(spec, "securityContext", {}))
}

# A port with a hostPort (0 included), the ports given as one object with one, a probe or
# a lifecycle handler: one body per place, each a lookup per container.
_suspect if {
	some entry in lib.write_containers
	some port in entry.container.ports
	port.hostPort != null
}

_suspect if {
	some entry in lib.write_containers
	entry.container.ports.hostPort != null
}

_suspect if {
	some entry in lib.write_containers
	entry.container.livenessProbe != null
}

_suspect if {
	some entry in lib.write_containers
	entry.container.readinessProbe != null
}

_suspect if {
	some entry in lib.write_containers
	entry.container.startupProbe != null
}

_suspect if {
	some entry in lib.write_containers
	entry.container.lifecycle != null
}

_suspect if {
	some annotations in lib.write_pod_annotations
	some key, _ in annotations
	contains(key, ".security.")
}

_suspect if {
	some annotations in lib.write_pod_annotations
	not type_name(annotations) in {"object", "null"}
}

# A context that sets a judged setting, a seccomp profile that is not allowed, or that is
# not an object at all.
_context_suspect(context) if {
	count(object.keys(context) & {"windowsOptions", "seLinuxOptions", "appArmorProfile", "procMount", "sysctls"}) > 0
}

_context_suspect(context) if {
	profile := context.seccompProfile
	not _allowed_profile(profile)
}

_context_suspect(context) if not is_object(context)

# A helper, not `not profile.type in _profiles`: OPA evaluates the field before the
# negation, so a profile without a type (or one that is text) would not be suspect.
_allowed_profile(profile) if profile.type in _profiles

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them; a clean workload
# stops at _clean.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	_suspect
	some msg in _findings
	reason := object.union(_reason, {"message": msg})
}

_findings contains msg if {
	some [entry, host_port] in _host_ports
	msg := sprintf("Host Ports: %s '%s' %s", [entry.field, entry.name, _host_port_problem(host_port)])
}

# Settings come from lib.security_settings, one pass for all of them.
_findings contains msg if {
	some [name, where, value] in lib.security_settings
	problem := _problem(name, value)
	msg := sprintf("%s: %s %s", [_control[name], where, problem])
}

_findings contains msg if {
	some [entry, handler_name, handler] in _handlers
	problem := _handler_problem(handler)
	msg := sprintf("Host Probes / Lifecycle Hooks: %s '%s' %s %s", [entry.field, entry.name, handler_name, problem])
}

_findings contains msg if {
	some annotations in lib.write_pod_annotations
	some key, value in annotations
	problem := _annotation_problem(key, value)
	msg := sprintf("%s: pod annotation %s: %s", array.concat(problem, [key, _shown(value)]))
}

_findings contains "AppArmor: pod annotations must be an object of strings" if {
	some annotations in lib.write_pod_annotations
	not type_name(annotations) in {"object", "null"}
}

# -- securityContext settings ------------------------------------------------------------

_profiles := {"RuntimeDefault", "Localhost"}

_problem("seccompProfile", value) := _profile_problem("seccompProfile", value)

_problem("appArmorProfile", value) := _profile_problem("appArmorProfile", value)

_problem("windowsOptions", value) := "sets windowsOptions, which must be an object" if {
	not is_object(value)
} else := "sets windowsOptions.hostProcess: true" if {
	value.hostProcess == true
} else := sprintf(
	"sets windowsOptions.hostProcess to %s, which must be true or false",
	[_shown(value.hostProcess)],
) if {
	not is_boolean(value.hostProcess)
	value.hostProcess != null
}

_problem("procMount", value) := sprintf("sets procMount %v; only Default is allowed", [_shown(value)]) if {
	value != "Default"
	value != null
}

_problem("seLinuxOptions", value) := "sets seLinuxOptions, which must be an object" if {
	not is_object(value)
} else := concat("; ", problems) if {
	problems := [problem |
		some field in ["type", "user", "role"]
		setting := object.get(value, field, "")
		problem := _selinux_problem(field, setting)
	]
	count(problems) > 0
}

_problem("sysctls", value) := "sets sysctls, which must be a list of {name, value} objects" if {
	not _named_list(value)
} else := sprintf("sets sysctls %s, outside the safe set in allowed_sysctls", [concat(", ", names)]) if {
	names := [sysctl.name | some sysctl in value; not sysctl.name in _allowed_sysctls]
	count(names) > 0
}

_profile_problem(field, value) := sprintf("sets %s, which must be an object", [field]) if {
	not is_object(value)
} else := sprintf("sets %s type %v; only RuntimeDefault or Localhost are allowed", [field, _shown(value.type)]) if {
	not value.type in _profiles
	value.type != null
}

_selinux_problem("type", setting) := sprintf("type %v is not in allowed_selinux_types", [_shown(setting)]) if {
	not setting in _allowed_selinux_types
}

_selinux_problem(field, setting) := sprintf("sets a custom %s %v", [field, _shown(setting)]) if {
	field in {"user", "role"}
	setting != ""
	setting != null
}

_named_list(value) if {
	is_array(value)
	every sysctl in value {
		is_string(sysctl.name)
	}
}

# -- host ports ---------------------------------------------------------------------------

# Every port that binds the host, as [entry, hostPort]: nearly always none, and then this
# set is the whole cost of the control.
_host_ports contains [entry, host_port] if {
	some entry in lib.write_containers
	some port in entry.container.ports
	host_port := port.hostPort
	not host_port in _allowed_host_ports
}

# Ports given as one object instead of a list: read as the one port it describes (a list
# of anything else, or text, carries no host port to judge).
_host_ports contains [entry, host_port] if {
	some entry in lib.write_containers
	host_port := entry.container.ports.hostPort
	not host_port in _allowed_host_ports
}

# 0 and null mean no host port.
_allowed_host_ports := {port | some port in _params.allowed_host_ports} | {0, null}

_host_port_problem(port) := sprintf("binds host port %v, which is not in allowed_host_ports", [port]) if {
	is_number(port)
} else := sprintf("sets hostPort to %v, which must be a port number", [_shown(port)])

# -- probes and lifecycle handlers --------------------------------------------------------

# Every probe and lifecycle handler of the written containers, as [entry, name, handler];
# a lifecycle that is not an object is one handler, so that it is refused too.
_handlers contains [entry, field, handler] if {
	some entry in lib.write_containers
	some field in ["livenessProbe", "readinessProbe", "startupProbe"]
	handler := entry.container[field]
	handler != null
}

_handlers contains [entry, name, handler] if {
	some entry in lib.write_containers
	lifecycle := entry.container.lifecycle
	some hook, handler in _lifecycle_hooks(lifecycle)
	name := concat(".", ["lifecycle", hook])
}

_lifecycle_hooks(lifecycle) := lifecycle if is_object(lifecycle)

else := {"": lifecycle}

_handler_problem(handler) := "must be an object" if {
	not is_object(handler)
} else := concat("; ", problems) if {
	problems := [problem |
		some action in ["httpGet", "tcpSocket"]
		settings := handler[action]
		problem := _action_problem(action, settings)
	]
	count(problems) > 0
}

_action_problem(action, settings) := sprintf("%s must be an object", [action]) if {
	not is_object(settings)
} else := sprintf(
	"%s sets host %v; probes and hooks may only reach the pod itself",
	[action, _shown(settings.host)],
) if {
	settings.host != ""
	settings.host != null
}

# -- annotations --------------------------------------------------------------------------

_apparmor_prefix := "container.apparmor.security.beta.kubernetes.io/"

_seccomp_keys := {"seccomp.security.alpha.kubernetes.io/pod"}

_seccomp_prefix := "container.seccomp.security.alpha.kubernetes.io/"

# The control an annotation breaks, as [control]; undefined when it breaks none.
_annotation_problem(key, value) := ["AppArmor"] if {
	startswith(key, _apparmor_prefix)
	not _apparmor_annotation_ok(value)
} else := ["Seccomp"] if {
	_seccomp_annotation(key)
	not _seccomp_annotation_ok(value)
}

_apparmor_annotation_ok(value) if value in {"", "runtime/default"}

_apparmor_annotation_ok(value) if startswith(value, "localhost/")

_seccomp_annotation(key) if key in _seccomp_keys

_seccomp_annotation(key) if startswith(key, _seccomp_prefix)

_seccomp_annotation_ok(value) if value in {"", "runtime/default", "docker/default"}

_seccomp_annotation_ok(value) if startswith(value, "localhost/")

# -- helpers ------------------------------------------------------------------------------

_allowed_selinux_types := {kind | some kind in _params.allowed_selinux_types}

_allowed_sysctls := {name | some name in _params.allowed_sysctls}

# A value as it reads in a message: text quoted, anything else as JSON.
_shown(value) := sprintf("'%s'", [value]) if is_string(value)

else := json.marshal(value)
