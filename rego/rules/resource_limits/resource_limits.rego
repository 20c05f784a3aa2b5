# METADATA
# title: CPU and memory limits on every container
# description: >-
#   A container without limits can starve its neighbours. Containers and init
#   containers need every resource in data (cpu, memory). Ephemeral containers are
#   not checked: the API forbids resources on them.
# custom:
#   code: K8S-RES-001
#   severity: medium
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
package rules.resource_limits

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	entry.field in data.params.rules.resource_limits.container_fields
	some resource in data.params.rules.resource_limits.resources
	object.get(entry.container, ["resources", "limits", resource], null) == null
	msg := sprintf("%s '%s' has no %s limit", [entry.field, entry.name, resource])
	reason := object.union(_reason, {"message": msg})
}
