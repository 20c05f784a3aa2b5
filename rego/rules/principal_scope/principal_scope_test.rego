package rules.principal_scope_test

import data.lib_test
import data.rules.principal_scope

_write := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))

_as(action, groups) := lib_test.with_field(action, "/principal/groups", groups)

_in_namespace(action, namespace) := lib_test.with_field(action, "/target/namespace", namespace)

test_allow_sre_writes_in_dev_and_payments if {
	count(principal_scope.violation) == 0 with input as _write
	count(principal_scope.violation) == 0 with input as _in_namespace(_write, "payments")
}

test_allow_developer_writes_in_dev if {
	count(principal_scope.violation) == 0 with input as _as(_write, ["developers"])
}

test_deny_developer_writes_in_payments if {
	some v in principal_scope.violation with input as _as(_in_namespace(_write, "payments"), ["developers"])
	v.code == "GW-SCOPE-001"
	contains(v.message, "namespace 'payments'")
	endswith(v.message, "; it may write in namespaces dev of clusters sandbox")
}

test_deny_names_every_scope_the_groups_allow_instead if {
	inp := _as(_in_namespace(_write, "staging"), ["developers", "payments", "viewers"])
	some v in principal_scope.violation with input as inp
	endswith(v.message, "; it may write in namespaces dev, payments of clusters sandbox")
}

test_deny_says_when_no_group_allows_the_effect_anywhere if {
	some v in principal_scope.violation with input as _as(_write, ["viewers"])
	endswith(v.message, "; its groups allow it to write nowhere (they allow: read)")
}

test_deny_palette_action_names_the_clusters_allowed_instead if {
	groups := {"edge": {"effects": ["delete"], "namespaces": [], "clusters": ["edge-*"]}}
	inp := _as(lib_test.palette_delete("core-uid-1", "dev"), ["edge"])
	some v in principal_scope.violation with input as inp with data.params.rules.principal_scope.groups as groups
	endswith(v.message, "; it may delete in clusters edge-*")
}

test_deny_developer_writes_in_other_cluster if {
	inp := lib_test.with_field(_as(_write, ["developers"]), "/target/cluster", "prod-eu")
	count(principal_scope.violation) == 1 with input as inp
}

test_allow_unmapped_principal_reads if {
	inp := _as(lib_test.k8s_read("k8s_get", "get", "Pod"), ["marketing"])
	count(principal_scope.violation) == 0 with input as inp
}

test_deny_unmapped_principal_writes if {
	some v in principal_scope.violation with input as _as(_write, [])
	contains(v.message, "groups: none")
}

test_allow_unmapped_default_comes_from_data if {
	scope := {"effects": ["read", "write"], "namespaces": ["dev"], "clusters": ["sandbox"]}
	count(principal_scope.violation) == 0 with input as _as(_write, [])
		with data.params.rules.principal_scope.unmapped as scope
}

test_allow_developer_reads_cluster_scoped if {
	inp := _in_namespace(_as(lib_test.k8s_read("k8s_nodes", "nodes", "Node"), ["developers"]), null)
	count(principal_scope.violation) == 0 with input as inp
}

test_deny_developer_lists_all_namespaces if {
	read := _in_namespace(_as(lib_test.k8s_read("k8s_list", "list", "Pod"), ["developers"]), null)
	inp := lib_test.with_field(read, "/target/all_namespaces", true)
	some v in principal_scope.violation with input as inp
	contains(v.message, "in cluster 'sandbox'")
}

test_allow_palette_action_for_sre if {
	count(principal_scope.violation) == 0 with input as lib_test.palette_delete("uid-1", "dev")
}

test_deny_palette_action_for_developers if {
	count(principal_scope.violation) == 1 with input as _as(lib_test.palette_delete("uid-1", "dev"), ["developers"])
}

test_allow_cluster_glob if {
	groups := {"edge": {"effects": ["delete"], "namespaces": [], "clusters": ["edge-*"]}}
	inp := _as(lib_test.palette_delete("edge-uid-7", "dev"), ["edge"])
	count(principal_scope.violation) == 0 with input as inp with data.params.rules.principal_scope.groups as groups
}

test_allow_unauthenticated_read if {
	inp := lib_test.with_field(_as(lib_test.k8s_read("k8s_get", "get", "Pod"), []), "/principal/authenticated", false)
	count(principal_scope.violation) == 0 with input as inp
}

test_deny_unauthenticated_write_even_in_sre_group if {
	inp := lib_test.with_field(_write, "/principal/authenticated", false)
	some v in principal_scope.violation with input as inp
	contains(v.message, "unauthenticated")
}

test_deny_missing_principal if {
	inp := json.remove(_write, ["principal"])
	count(principal_scope.violation) == 2 with input as inp
}

test_deny_missing_cluster_for_narrow_scope if {
	inp := json.remove(_as(_write, ["developers"]), ["target/cluster"])
	some v in principal_scope.violation with input as inp
	contains(v.message, "in namespace 'dev' without naming a cluster")
}

test_deny_fleet_wide_read_for_narrow_scope if {
	fleet := json.remove(_as(_write, ["developers"]), ["target/cluster", "target/namespace"])
	read := object.union(fleet, {"effect": "read"})
	some v in principal_scope.violation with input as read
	contains(v.message, "may not read across all clusters")
}

# Groups that are not a list map to nothing, whatever their values say.
test_deny_write_with_groups_as_an_object if {
	count(principal_scope.violation) > 0 with input as _as(_write, {"a": "sre"})
}

_teams := {
	"team-eu": {"effects": ["read", "write"], "namespaces": ["*"], "clusters": ["prod-eu", "staging-*"]},
	"team-us": {"effects": ["read", "write"], "namespaces": ["*"], "clusters": ["prod-us"]},
}

_on(action, cluster) := lib_test.with_field(action, "/target/cluster", cluster)

test_allow_scopes_name_several_clusters_each_by_name_or_glob if {
	every cluster in ["prod-eu", "staging-1", "staging-eu"] {
		count(principal_scope.violation) == 0 with input as _on(_as(_write, ["team-eu"]), cluster)
			with data.params.rules.principal_scope.groups as _teams
	}
}

test_allow_another_group_in_its_own_cluster if {
	count(principal_scope.violation) == 0 with input as _on(_as(_write, ["team-us"]), "prod-us")
		with data.params.rules.principal_scope.groups as _teams
}

test_deny_a_scope_does_not_reach_the_other_clusters if {
	some v in principal_scope.violation with input as _on(_as(_write, ["team-eu"]), "prod-us")
		with data.params.rules.principal_scope.groups as _teams
	contains(v.message, "of cluster 'prod-us'")
	endswith(v.message, "; it may write in namespaces * of clusters prod-eu, staging-*")
}

test_deny_the_other_group_in_the_first_cluster if {
	count(principal_scope.violation) == 1 with input as _on(_as(_write, ["team-us"]), "prod-eu")
		with data.params.rules.principal_scope.groups as _teams
}

test_allow_groups_together_cover_the_union_of_their_clusters if {
	every cluster in ["prod-eu", "prod-us"] {
		count(principal_scope.violation) == 0 with input as _on(_as(_write, ["team-eu", "team-us"]), cluster)
			with data.params.rules.principal_scope.groups as _teams
	}
}

test_allow_palette_uid_in_scope_of_its_linked_context if {
	# The Palette cluster uid-eu is the cluster the kube context prod-eu reaches.
	inp := _as(lib_test.palette_delete("uid-eu", "dev"), ["team-eu"])
	groups := object.union(_teams, {"team-eu": {"effects": ["delete"], "namespaces": [], "clusters": ["prod-eu"]}})
	count(principal_scope.violation) == 0 with input as inp with data.params.rules.principal_scope.groups as groups
		with data.params.clusters as {"prod-eu": {"palette_uid": "uid-eu"}}
	count(principal_scope.violation) == 1 with input as inp with data.params.rules.principal_scope.groups as groups
		with data.params.clusters as {}
}

test_allow_context_in_scope_of_its_linked_palette_uid if {
	groups := {"edge": {"effects": ["write"], "namespaces": ["*"], "clusters": ["uid-edge"]}}
	inp := _on(_as(_write, ["edge"]), "edge-1")
	count(principal_scope.violation) == 0 with input as inp with data.params.rules.principal_scope.groups as groups
		with data.params.clusters as {"edge-1": {"palette_uid": "uid-edge"}}
}
