package rules.cluster_scoped_writes_test

import data.lib_test
import data.rules.cluster_scoped_writes

test_allow_namespaced_write if {
	inp := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))
	count(cluster_scoped_writes.violation) == 0 with input as inp
}

test_allow_cluster_scoped_read if {
	inp := lib_test.with_field(lib_test.k8s_read("k8s_nodes", "nodes", "Node"), "/target/namespace", null)
	count(cluster_scoped_writes.violation) == 0 with input as inp
}

test_deny_namespace_write_needs_approval if {
	ns := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
	some v in cluster_scoped_writes.violation with input as lib_test.apply(ns)
	v.code == "K8S-SCOPE-001"
	v.effect == "needs_approval"
}

test_deny_cluster_role_binding if {
	crb := {
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind": "ClusterRoleBinding",
		"metadata": {"name": "x"},
		"roleRef": {"kind": "ClusterRole", "name": "view"},
	}
	count(cluster_scoped_writes.violation) == 1 with input as lib_test.apply(crb)
}

test_deny_listed_kind_even_with_namespace if {
	class := {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}}
	inp := lib_test.with_field(lib_test.apply(class), "/target/namespace", "dev")
	count(cluster_scoped_writes.violation) == 1 with input as inp
}

test_deny_delete_of_crd if {
	crd := lib_test.k8s_delete("CustomResourceDefinition", "widgets.example.com")
	inp := lib_test.with_field(crd, "/target/namespace", null)
	count(cluster_scoped_writes.violation) == 1 with input as inp
}

test_deny_unknown_kind_without_namespace if {
	widget := {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
	inp := json.remove(lib_test.apply(widget), ["target/namespace", "target/kind"])
	some v in cluster_scoped_writes.violation with input as inp
	contains(v.message, "object 'w'")
}
