# METADATA
# title: Cluster-scoped writes need approval
# description: >-
#   Namespaces, cluster roles, CRDs, nodes, persistent volumes, storage classes,
#   webhook configurations and other cluster-scoped kinds (list in data) affect every
#   tenant of the cluster. So does any Kubernetes write whose target has no namespace.
# custom:
#   code: K8S-SCOPE-001
#   severity: high
#   mode: needs_approval
#   reached_by: [k8s_apply, k8s_delete, gateway_rollback]
package rules.cluster_scoped_writes

import data.lib

_reason := lib.approval_template(rego.metadata.chain(), {})

_kinds contains lower(kind) if some kind in data.params.rules.cluster_scoped_writes.kinds

violation contains reason if {
	lib.k8s_change
	_cluster_scoped
	msg := sprintf("%s %s '%s' is cluster-scoped", [input.effect, _kind_name, lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

_cluster_scoped if lib.kind in _kinds

_cluster_scoped if {
	object.get(input.target, "namespace", null) == null
	object.get(input.target, "all_namespaces", false) == false
}

default _kind_name := "object"

_kind_name := input.target.kind if lib.has_target_kind
