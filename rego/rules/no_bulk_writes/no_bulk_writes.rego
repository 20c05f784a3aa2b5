# METADATA
# title: No bulk writes
# description: >-
#   Writes and deletes act on one named object. Selecting by label, acting across all
#   namespaces or leaving out the name could touch far more than the agent looked at.
# custom:
#   code: OPS-BULK-001
#   severity: high
#   mode: deny
#   defence_in_depth: >-
#     No tool writes or deletes by label selector, across namespaces or without a name:
#     every write names one object. Kept for the day one does; its Rego tests feed it such
#     actions directly.
package rules.no_bulk_writes

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

violation contains reason if {
	lib.k8s_change
	selector := input.target.label_selector
	is_string(selector)
	trim_space(selector) != ""
	msg := sprintf("%s by label selector '%s' is a bulk change", [input.effect, selector])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	lib.k8s_change
	input.target.all_namespaces == true
	msg := sprintf("%s across all namespaces is a bulk change", [input.effect])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	lib.k8s_change
	not _named
	msg := sprintf("%s without an object name is a bulk change", [input.effect])
	reason := object.union(_reason, {"message": msg})
}

_named if {
	is_string(input.target.name)
	trim_space(input.target.name) != ""
}
