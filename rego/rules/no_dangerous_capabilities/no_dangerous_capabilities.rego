# METADATA
# title: No dangerous added capabilities
# description: >-
#   Linux capabilities such as SYS_ADMIN or NET_ADMIN (list in data) give a container
#   near-root power over the node; ALL adds every one of them. Names are compared
#   case-insensitively and with or without the CAP_ prefix.
# custom:
#   code: K8S-CAP-001
#   severity: high
#   mode: deny
package rules.no_dangerous_capabilities

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

_dangerous contains _normalised(cap) if some cap in data.params.rules.no_dangerous_capabilities.capabilities

_normalised(cap) := trim_prefix(upper(cap), "CAP_")

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	some cap in entry.container.securityContext.capabilities.add
	_normalised(cap) in _dangerous
	msg := sprintf("%s '%s' adds capability %s", [entry.field, entry.name, _normalised(cap)])
	reason := object.union(_reason, {"message": msg})
}
