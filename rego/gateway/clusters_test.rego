package gateway_test

import data.gateway

_clusters := {
	"prod-*": {"environment": "production"},
	"edge-1": {"environment": "staging", "palette_uid": "uid-edge-1"},
	"uid-core": {"environment": "Prod"},
	"core": {"palette_uid": "uid-core"},
	"mixed": {"environment": "development"},
	"mixed*": {"environment": "qa"},
}

test_allow_environment_by_glob_exact_name_and_linked_uid if {
	envs := gateway.cluster_environments with input as {"clusters": ["prod-eu", "edge-1", "core", "sandbox"]}
		with data.params.clusters as _clusters
	envs == {"prod-eu": "production", "edge-1": "staging", "core": "Prod"}
}

test_allow_production_wins_where_entries_disagree if {
	envs := gateway.cluster_environments with input as {"clusters": ["prod-mixed", "mixed"]}
		with data.params.clusters as object.union(_clusters, {"*-mixed": {"environment": "development"}})
	envs == {"prod-mixed": "production", "mixed": "development"}
}

test_deny_names_that_are_not_strings_are_ignored if {
	envs := gateway.cluster_environments with input as {"clusters": ["prod-a", 7, null]}
		with data.params.clusters as _clusters
	envs == {"prod-a": "production"}
}
