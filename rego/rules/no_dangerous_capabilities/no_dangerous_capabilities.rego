# METADATA
# title: Only default capabilities may be added
# description: >-
#   Pod Security Standards baseline, Capabilities: a container may add only capabilities
#   in allowed_capabilities (data: the runtime's default set, AUDIT_WRITE, CHOWN, ...,
#   SYS_CHROOT). Anything else, such as SYS_ADMIN, NET_ADMIN or NET_RAW, gives it power
#   over the node or its network; ALL adds every one. Names are compared
#   case-insensitively and with or without the CAP_ prefix. Containers, init and
#   ephemeral containers; capabilities or add of the wrong type are refused too.
# custom:
#   code: K8S-CAP-001
#   severity: high
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "baseline/Capabilities"
#       tests:
#         - test_deny_sys_admin
#         - test_deny_all_capabilities
#         - test_deny_capability_outside_the_default_set
#         - test_deny_capability_in_init_container
#         - test_deny_capability_in_ephemeral_container
#         - test_deny_capabilities_of_the_wrong_type
#         - test_deny_added_capabilities_that_are_not_a_list
package rules.no_dangerous_capabilities

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

_allowed contains _normalised(cap) if some cap in data.params.rules.no_dangerous_capabilities.allowed_capabilities

_normalised(cap) := trim_prefix(upper(cap), "CAP_")

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	some cap in entry.container.securityContext.capabilities.add
	not _normalised(cap) in _allowed
	msg := sprintf("%s '%s' adds capability %s, which is not in allowed_capabilities", [
		entry.field,
		entry.name,
		_normalised(cap),
	])
	reason := object.union(_reason, {"message": msg})
}

# Shapes are judged on the distinct contexts (one for most workloads), and not at all
# for a hardened workload (capabilities exactly {"drop": ["ALL"]}); the containers that
# carry a misshapen one are named only then.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.soft
	some context in lib.container_contexts
	problem := _shape_problem(context.capabilities)
	some entry in lib.write_containers
	object.get(entry.container, "securityContext", {}) == context
	msg := sprintf("%s '%s' %s", [entry.field, entry.name, problem])
	reason := object.union(_reason, {"message": msg})
}

# A capabilities object whose add (or drop) list cannot be read as a list of names.
_shape_problem(capabilities) := "sets capabilities, which must be an object" if {
	not is_object(capabilities)
	capabilities != null
} else := sprintf("sets capabilities.%s, which must be a list of names", [field]) if {
	some field in ["add", "drop"]
	list := capabilities[field]
	list != null
	not _names(list)
}

_names(list) if {
	is_array(list)
	every name in list {
		is_string(name)
	}
}
