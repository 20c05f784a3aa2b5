# METADATA
# title: Destructive actions need approval
# description: >-
#   Deleting anything, or scaling a running workload to zero replicas, takes a service
#   away; a human confirms it first.
# custom:
#   code: OPS-DESTRUCT-001
#   severity: high
#   mode: needs_approval
#   reached_by: [k8s_delete, k8s_scale, palette_delete_cluster, gateway_rollback]
package rules.destructive_actions

import data.lib

_approval := data.params.rules.destructive_actions.approval

_reason := lib.approval_template(rego.metadata.chain(), _approval)

violation contains reason if {
	input.effect == "delete"
	msg := sprintf("deleting %s '%s' cannot be undone", [_what, lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

# The leading input equalities let OPA's rule index skip this body for every action
# that is not a Kubernetes write, without evaluating it.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.k8s_object_write
	input.object.spec.replicas == 0
	_running_before
	msg := sprintf("scaling %s '%s' to 0 replicas stops it", [_what, lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

# A scale call always counts; an apply only when the live object has replicas.
_running_before if input.operation == "scale"

_running_before if object.get(input.current, ["spec", "replicas"], 1) != 0

default _what := "object"

_what := input.target.kind if lib.has_target_kind
