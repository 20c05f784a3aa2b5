# METADATA
# title: Production protection
# description: >-
#   Any write in a production environment (environments in data, from the target's
#   environment, the environment label on the object, or the environment
#   data.params.clusters gives the target's cluster) needs approval, without
#   self-approval; a delete there needs two approvals and no self-approval.
# custom:
#   code: OPS-PROD-001
#   severity: high
#   mode: needs_approval
#   reached_by:
#     - k8s_apply
#     - k8s_scale
#     - k8s_restart
#     - k8s_set_resources
#     - k8s_delete
#     - palette_update_cluster_profiles
#     - palette_delete_cluster
#     - gateway_rollback
package rules.production_protection

import data.lib

_params := data.params.rules.production_protection

_write_reason := lib.approval_template(rego.metadata.chain(), _params.write_approval)

_delete_reason := lib.approval_template(rego.metadata.chain(), _params.delete_approval)

violation contains reason if {
	lib.production
	input.effect == "write"
	msg := sprintf("%s on '%s' writes to production%s", [input.tool, lib.target_name, _why])
	reason := object.union(_write_reason, {"message": msg})
}

violation contains reason if {
	lib.production
	input.effect == "delete"
	msg := sprintf("%s on '%s' deletes in production%s", [input.tool, lib.target_name, _why])
	reason := object.union(_delete_reason, {"message": msg})
}

# Where production comes from, when it is the cluster rather than the namespace: a
# reviewer should not have to guess why a namespace labelled development needs approval.
default _why := ""

_why := sprintf(" (policy data makes cluster '%s' production)", [input.target.cluster]) if lib.cluster_production
