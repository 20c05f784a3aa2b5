# METADATA
# title: Palette cluster changes
# description: >-
#   A Palette cluster with more nodes than max_nodes (data, default 10; the sum of its
#   machine pools' sizes) needs approval, and so does one whose node count cannot be
#   determined. Deleting a Palette cluster needs approval; two approvals, without
#   self-approval, in production.
# custom:
#   code: PAL-001
#   severity: high
#   mode: needs_approval
#   reached_by:
#     - palette_create_cluster
#     - palette_update_cluster_profiles
#     - palette_delete_cluster
#     - gateway_rollback
package rules.palette_clusters

import data.lib

_params := data.params.rules.palette_clusters

_reason := lib.approval_template(rego.metadata.chain(), {})

# Two templates, not one of an input-dependent requirement, so that both stay constants.
_delete_reason := lib.approval_template(rego.metadata.chain(), _params.production_delete_approval) if lib.production

_delete_reason := lib.approval_template(rego.metadata.chain(), _params.delete_approval) if not lib.production

_palette_write if {
	input.backend == "palette"
	input.effect == "write"
}

_sizes := [object.get(pool, ["poolConfig", "size"], null) | some pool in input.object.spec.machinepoolconfig]

_counted if {
	count(_sizes) > 0
	every size in _sizes {
		is_number(size)
		size >= 0
	}
}

violation contains reason if {
	_palette_write
	_counted
	sum(_sizes) > _params.max_nodes
	msg := sprintf("cluster '%s' would have %v nodes, more than %v", [lib.target_name, sum(_sizes), _params.max_nodes])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	_palette_write
	input.operation == "create_cluster"
	not _counted
	msg := sprintf("the node count of cluster '%s' cannot be determined from its machine pools", [lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "palette"
	input.effect == "delete"
	msg := sprintf("deleting Palette cluster '%s'", [lib.target_name])
	reason := object.union(_delete_reason, {"message": msg})
}
