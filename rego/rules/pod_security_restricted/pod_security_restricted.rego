# METADATA
# title: Pod Security Standards restricted
# description: >-
#   The restricted controls of the Kubernetes Pod Security Standards, on top of the
#   baseline ones: volumes only of the types in allowed_volume_types (configMap, csi,
#   downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret);
#   allowPrivilegeEscalation false on every container; runAsNonRoot true, on the pod or on
#   every container; seccomp RuntimeDefault or Localhost, on the pod or on every
#   container; every container drops ALL capabilities and adds none but
#   allowed_added_capabilities (NET_BIND_SERVICE). runAsUser 0 is refused by no_root.
#   Pods with spec.os.name windows are exempt from the privilege escalation, seccomp
#   and capabilities controls, as in the standard. Ships in warn mode: one line of data,
#   "modes": {"pod_security_restricted": "deny"}, enforces it. A value of the wrong type
#   never satisfies a control. Each message starts with the control it breaks.
# custom:
#   code: K8S-PSS-002
#   severity: medium
#   mode: warn
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "restricted/Volume Types"
#       tests:
#         - test_deny_volume_type_outside_the_list
#         - test_deny_host_path_volume_as_a_restricted_type
#         - test_deny_hardened_pod_with_a_restricted_volume_type
#     - control: "restricted/Privilege Escalation"
#       tests:
#         - test_deny_privilege_escalation_not_set_to_false
#         - test_deny_privilege_escalation_of_the_wrong_type
#     - control: "restricted/Running as Non-root"
#       tests:
#         - test_deny_run_as_non_root_not_set
#         - test_deny_run_as_non_root_in_init_container
#         - test_deny_run_as_non_root_of_the_wrong_type
#     - control: "restricted/Seccomp"
#       tests:
#         - test_deny_seccomp_not_set
#         - test_deny_seccomp_unconfined_in_ephemeral_container
#         - test_deny_seccomp_of_the_wrong_type
#     - control: "restricted/Capabilities"
#       tests:
#         - test_deny_capabilities_not_dropped
#         - test_deny_added_capability_other_than_net_bind_service
#         - test_deny_capabilities_of_the_wrong_type
package rules.pod_security_restricted

import data.lib

_params := data.params.rules.pod_security_restricted

_reason := lib.reason_template(rego.metadata.chain())

_profiles := {"RuntimeDefault", "Localhost"}

_allowed_volume_types := {kind | some kind in _params.allowed_volume_types}

_allowed_added := {cap | some cap in _params.allowed_added_capabilities}

# The common compliant workload: hardened containers and pods (lib.hardened, the
# restricted profile's own form) and volumes of allowed types only. The findings, one
# body per control, are listed only for any other workload.
_compliant if not _gap

# Not compliant, positively: a lookup for the violation body instead of a negation.
_gap if lib.soft

# A volume with a key other than its name and an allowed type.
_gap if {
	some spec in lib.write_pod_specs
	some volume in spec.volumes
	object.remove(volume, _allowed_volume_keys) != {}
}

_allowed_volume_keys := _allowed_volume_types | {"name"}

# The leading input equalities let OPA's rule index skip this body for every action
# that is not a Kubernetes write; a compliant workload stops at _compliant.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	_gap
	some msg in _findings
	reason := object.union(_reason, {"message": msg})
}

_findings contains msg if {
	some spec in lib.write_pod_specs
	some volume in spec.volumes
	some kind, _ in volume
	kind != "name"
	not kind in _allowed_volume_types
	msg := sprintf("Volume Types: volume '%s' is of type %s, not one of allowed_volume_types", [
		object.get(volume, "name", "<unnamed>"),
		kind,
	])
}

_findings contains msg if {
	some entry in lib.write_containers
	not entry.container.securityContext.allowPrivilegeEscalation == false
	not _windows(entry.pod)
	msg := sprintf("Privilege Escalation: %s '%s' must set allowPrivilegeEscalation: false", [entry.field, entry.name])
}

_findings contains msg if {
	some entry in lib.write_containers
	entry.run_as_non_root != true
	msg := sprintf("Running as Non-root: %s '%s' must run with runAsNonRoot: true (on the pod or the container)", [
		entry.field,
		entry.name,
	])
}

_findings contains msg if {
	some entry in lib.write_containers
	not _seccomp_profile(entry) in _profiles
	not _windows(entry.pod)
	msg := sprintf("Seccomp: %s '%s' must run with seccompProfile type %s", [
		entry.field,
		entry.name,
		"RuntimeDefault or Localhost (on the pod or the container)",
	])
}

_findings contains msg if {
	some entry in lib.write_containers
	not _drops_all(entry.container)
	not _windows(entry.pod)
	msg := sprintf("Capabilities: %s '%s' must drop ALL capabilities", [entry.field, entry.name])
}

_findings contains msg if {
	some entry in lib.write_containers
	some cap in entry.container.securityContext.capabilities.add
	not cap in _allowed_added
	not _windows(entry.pod)
	msg := sprintf("Capabilities: %s '%s' adds %v; only allowed_added_capabilities may be added", [
		entry.field,
		entry.name,
		cap,
	])
}

_windows(pod) if pod.os.name == "windows"

# Helpers, not `not "ALL" in ...drop`: OPA evaluates the field before the negation, so a
# container without a drop list would not be reported.
_drops_all(container) if "ALL" in container.securityContext.capabilities.drop

# The container's seccomp profile type, else the pod's.
_seccomp_profile(entry) := profile if {
	profile := entry.container.securityContext.seccompProfile.type
} else := object.get(entry.pod, ["securityContext", "seccompProfile", "type"], null)
