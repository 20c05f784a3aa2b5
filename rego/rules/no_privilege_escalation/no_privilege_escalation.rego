# METADATA
# title: No privilege escalation
# description: >-
#   allowPrivilegeEscalation true lets a process gain more privileges than its parent
#   (setuid binaries, file capabilities). Checked on every container kind.
# custom:
#   code: K8S-PRIV-002
#   severity: high
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
package rules.no_privilege_escalation

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	entry.container.securityContext.allowPrivilegeEscalation == true
	msg := sprintf("%s '%s' allows privilege escalation", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}
