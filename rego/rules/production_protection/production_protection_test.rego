package rules.production_protection_test

import data.lib_test
import data.rules.production_protection

_prod(action) := lib_test.with_field(action, "/target/environment", "production")

_deployment := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))

test_allow_write_outside_production if {
	count(production_protection.violation) == 0 with input as _deployment
}

test_allow_read_in_production if {
	count(production_protection.violation) == 0 with input as _prod(lib_test.k8s_read("k8s_get", "get", "Pod"))
}

test_deny_write_in_production_needs_one_approval_without_self_approval if {
	some v in production_protection.violation with input as _prod(_deployment)
	v.code == "OPS-PROD-001"
	v.effect == "needs_approval"
	v.approval.min_approvals == 1
	v.approval.allow_self_approval == false
}

test_deny_delete_in_production_needs_two_approvals if {
	some v in production_protection.violation with input as _prod(lib_test.k8s_delete("Deployment", "web"))
	v.approval.min_approvals == 2
	v.approval.allow_self_approval == false
}

test_deny_environment_matched_case_insensitively if {
	inp := lib_test.with_field(_deployment, "/target/environment", "PROD")
	count(production_protection.violation) == 1 with input as inp
}

test_deny_production_label_on_object if {
	ns := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"environment": "production"}}}
	count(production_protection.violation) == 1 with input as lib_test.apply(ns)
}

test_deny_palette_delete_of_production_cluster_by_label if {
	inp := lib_test.with_field(lib_test.palette_delete("uid-1", "production"), "/target/environment", null)
	count(production_protection.violation) == 1 with input as inp
}

_on_prod_cluster(action) := lib_test.with_field(
	lib_test.with_field(action, "/target/cluster", "prod-eu"),
	"/target/environment", "development",
)

test_deny_write_in_a_production_cluster_whatever_the_namespace_label if {
	some v in production_protection.violation with input as _on_prod_cluster(_deployment)
		with data.params.clusters as {"prod-*": {"environment": "production"}}
	v.message == "k8s_apply on 'web' writes to production (policy data makes cluster 'prod-eu' production)"
	v.approval.allow_self_approval == false
}

test_deny_delete_in_a_production_cluster_needs_two_approvals if {
	some v in production_protection.violation with input as _on_prod_cluster(lib_test.k8s_delete("Deployment", "web"))
		with data.params.clusters as {"prod-eu": {"environment": "production"}}
	v.approval.min_approvals == 2
}

test_allow_write_in_a_cluster_data_names_development if {
	count(production_protection.violation) == 0 with input as _on_prod_cluster(_deployment)
		with data.params.clusters as {"prod-eu": {"environment": "development"}}
}
