# METADATA
# title: No host namespaces
# description: >-
#   hostNetwork, hostPID and hostIPC share the node's network, process and IPC
#   namespaces with the pod, which exposes every other workload on the node. A value
#   that is not true or false is refused too.
# custom:
#   code: K8S-HOST-001
#   severity: high
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "baseline/Host Namespaces"
#       tests:
#         - test_deny_host_network
#         - test_deny_host_pid_and_ipc
#         - test_deny_host_network_in_cronjob_template
#         - test_deny_host_namespace_of_the_wrong_type
#         - test_deny_host_namespace_of_the_wrong_type_in_a_hardened_workload
package rules.no_host_namespaces

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

_host_fields := ["hostNetwork", "hostPID", "hostIPC"]

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.k8s_object_write
	some spec in lib.write_pod_specs
	some field in _host_fields
	value := spec[field]
	value != false
	msg := _message(field, value)
	reason := object.union(_reason, {"message": msg})
}

_message(field, true) := sprintf("pod spec sets %s: true", [field])

# Of the wrong type ("true"): refused, never skipped. Null means unset.
_message(field, value) := sprintf("pod spec sets %s to %s, which must be true or false", [
	field,
	json.marshal(value),
]) if {
	not is_boolean(value)
	value != null
}
