# METADATA
# title: External exposure needs approval
# description: >-
#   A Service of type LoadBalancer puts a workload on a public address unless an
#   annotation in data marks it internal; externalIPs route outside traffic to it.
#   Either needs a human to agree.
# custom:
#   code: K8S-NET-001
#   severity: medium
#   mode: needs_approval
package rules.external_services

import data.lib

_reason := lib.approval_template(rego.metadata.chain(), {})

_service if {
	lib.k8s_object_write
	lower(input.object.kind) == "service"
}

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	_service
	input.object.spec.type == "LoadBalancer"
	not _internal
	msg := sprintf("Service '%s' of type LoadBalancer is not marked internal", [lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	_service
	count(input.object.spec.externalIPs) > 0
	msg := sprintf("Service '%s' sets externalIPs", [lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

_internal if {
	some key, value in data.params.rules.external_services.internal_annotations
	lower(input.object.metadata.annotations[key]) == lower(value)
}
