# METADATA
# title: Secrets
# description: >-
#   Secret values never reach the model: a read of a Secret kind (kinds in data) is
#   allowed only with redact obligations over data and stringData (paths in data).
#   Writing or deleting a Secret needs approval.
# custom:
#   code: K8S-SECRET-001
#   severity: high
#   mode: needs_approval
#   reached_by: [k8s_apply, k8s_get, k8s_list, k8s_delete, gateway_rollback]
package rules.secrets

import data.lib

_params := data.params.rules.secrets

_reason := lib.approval_template(rego.metadata.chain(), {})

_secret if lib.kind in {lower(kind) | some kind in _params.kinds}

violation contains reason if {
	_secret
	lib.k8s_change
	msg := sprintf("%s of Secret '%s'", [input.effect, lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

# METADATA
# description: Result paths the gateway must redact before the result leaves.
redact contains path if {
	_secret
	input.effect == "read"
	some path in _params.redact
}
