# METADATA
# title: No RBAC escalation
# description: >-
#   Binding a subject to cluster-admin (privileged roles in data), or a Role or
#   ClusterRole granting "*" verbs or resources, or escalation verbs (escalate, bind,
#   impersonate; in data), hands out more power than any agent should grant.
# custom:
#   code: K8S-RBAC-001
#   severity: critical
#   mode: deny
#   reached_by: [k8s_apply, gateway_rollback]
package rules.rbac_escalation

import data.lib

_params := data.params.rules.rbac_escalation

_reason := lib.reason_template(rego.metadata.chain())

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.k8s_object_write
	lower(input.object.kind) in {"rolebinding", "clusterrolebinding"}
	input.object.roleRef.name in _params.privileged_roles
	msg := sprintf("%s '%s' binds to %s", [input.object.kind, lib.target_name, input.object.roleRef.name])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some [index, field] in _role_rule_fields
	msg := sprintf("%s '%s' grants '*' %s (rule %d)", [input.object.kind, lib.target_name, field, index])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some [index, verb] in _escalation_verbs
	msg := sprintf("%s '%s' grants the %s verb (rule %d)", [input.object.kind, lib.target_name, verb, index])
	reason := object.union(_reason, {"message": msg})
}

_role_rules contains [index, rule] if {
	lib.k8s_object_write
	lower(input.object.kind) in {"role", "clusterrole"}
	some index, rule in input.object.rules
}

_role_rule_fields contains [index, field] if {
	some [index, rule] in _role_rules
	some field in ["verbs", "resources"]
	"*" in rule[field]
}

_escalation_verbs contains [index, lower(verb)] if {
	some [index, rule] in _role_rules
	some verb in rule.verbs
	lower(verb) in _params.escalation_verbs
}
