package rules.palette_clusters_test

import data.lib_test
import data.rules.palette_clusters

_pools(workers) := [lib_test.pool("control-plane", 1, "m5.large"), lib_test.pool("workers", workers, "m5.xlarge")]

test_allow_small_cluster if {
	count(palette_clusters.violation) == 0 with input as lib_test.palette_create("edge", _pools(3))
}

test_allow_cluster_at_threshold if {
	count(palette_clusters.violation) == 0 with input as lib_test.palette_create("edge", _pools(9))
}

test_deny_large_cluster_needs_approval if {
	some v in palette_clusters.violation with input as lib_test.palette_create("big", _pools(10))
	v.code == "PAL-001"
	v.effect == "needs_approval"
	contains(v.message, "11 nodes")
}

test_deny_node_count_threshold_from_data if {
	inp := lib_test.palette_create("edge", _pools(3))
	count(palette_clusters.violation) == 1 with input as inp with data.params.rules.palette_clusters.max_nodes as 3
}

test_deny_unknown_pool_size if {
	pools := [{"poolConfig": {"name": "workers"}, "cloudConfig": {"instanceType": "m5.large"}}]
	some v in palette_clusters.violation with input as lib_test.palette_create("edge", pools)
	contains(v.message, "cannot be determined")
}

test_deny_string_pool_size if {
	count(palette_clusters.violation) == 1 with input as lib_test.palette_create("edge", _pools("100"))
}

test_deny_no_pools if {
	count(palette_clusters.violation) == 1 with input as lib_test.palette_create("edge", [])
}

test_deny_delete_needs_one_approval if {
	some v in palette_clusters.violation with input as lib_test.palette_delete("uid-1", "dev")
	v.approval.min_approvals == 1
}

test_deny_delete_in_production_needs_two_approvals if {
	some v in palette_clusters.violation with input as lib_test.palette_delete("uid-1", "production")
	v.approval.min_approvals == 2
	v.approval.allow_self_approval == false
}

test_allow_kubernetes_delete_is_not_palette if {
	count(palette_clusters.violation) == 0 with input as lib_test.k8s_delete("Pod", "web")
}
