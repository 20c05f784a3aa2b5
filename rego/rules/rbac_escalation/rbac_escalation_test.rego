package rules.rbac_escalation_test

import data.lib_test
import data.rules.rbac_escalation

_binding(kind, role) := lib_test.apply({
	"apiVersion": "rbac.authorization.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": "agent", "namespace": "dev"},
	"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
	"subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "dev"}],
})

_role(kind, rules) := lib_test.apply({
	"apiVersion": "rbac.authorization.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": "agent", "namespace": "dev"},
	"rules": rules,
})

test_allow_binding_to_view if {
	count(rbac_escalation.violation) == 0 with input as _binding("RoleBinding", "view")
}

test_allow_narrow_role if {
	rules := [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
	count(rbac_escalation.violation) == 0 with input as _role("Role", rules)
}

test_deny_binding_to_cluster_admin if {
	inp := _binding("ClusterRoleBinding", "cluster-admin")
	lib_test.codes(rbac_escalation.violation) == {"K8S-RBAC-001"} with input as inp
}

test_deny_role_binding_to_cluster_admin if {
	count(rbac_escalation.violation) == 1 with input as _binding("RoleBinding", "cluster-admin")
}

test_deny_wildcard_verbs if {
	rules := [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]
	count(rbac_escalation.violation) == 1 with input as _role("Role", rules)
}

test_deny_wildcard_resources_in_cluster_role if {
	rules := [
		{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
		{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]},
	]
	some v in rbac_escalation.violation with input as _role("ClusterRole", rules)
	contains(v.message, "rule 1")
}

test_deny_escalation_verbs if {
	rules := [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["Bind", "escalate"]}]
	count(rbac_escalation.violation) == 2 with input as _role("ClusterRole", rules)
}
