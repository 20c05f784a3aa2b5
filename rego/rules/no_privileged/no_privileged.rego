# METADATA
# title: No privileged containers
# description: >-
#   A privileged container has every capability and the host's devices: one such
#   container is the whole node. Containers, init and ephemeral containers alike, in
#   every pod template.
# custom:
#   code: K8S-PRIV-001
#   severity: critical
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "baseline/Privileged Containers"
#       tests:
#         - test_deny_privileged_container
#         - test_deny_privileged_init_container
#         - test_deny_privileged_ephemeral_container
#         - test_deny_privileged_in_cronjob_template
#         - test_deny_privileged_of_the_wrong_type
package rules.no_privileged

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	entry.container.securityContext.privileged == true
	msg := sprintf("%s '%s' is privileged", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}
