package lib_test

import data.lib

_clusters := {
	"prod-*": {"environment": "production"},
	"edge-1": {"environment": "staging", "palette_uid": "uid-edge-1"},
	"core": {"palette_uid": "uid-core"},
	"uid-core": {"environment": "production"},
}

test_allow_cluster_names_link_a_context_and_its_palette_uid if {
	lib.cluster_names == {"edge-1", "uid-edge-1"} with input as {"target": {"cluster": "edge-1"}}
		with data.params.clusters as _clusters
	lib.cluster_names == {"uid-edge-1", "edge-1"} with input as {"target": {"cluster": "uid-edge-1"}}
		with data.params.clusters as _clusters
	lib.cluster_names == {"sandbox"} with input as {"target": {"cluster": "sandbox"}}
		with data.params.clusters as _clusters
	count(lib.cluster_names) == 0 with input as {"target": {}} with data.params.clusters as _clusters
}

test_allow_production_by_cluster_data_whatever_the_namespace_says if {
	lib.production with input as {"target": {"cluster": "prod-eu", "environment": "development"}}
		with data.params.clusters as _clusters
	lib.production with input as {"target": {"cluster": "core", "environment": "development"}}
		with data.params.clusters as _clusters
}

test_allow_production_by_namespace_label_whatever_the_cluster_data_says if {
	lib.production with input as {"target": {"cluster": "edge-1", "environment": "production"}}
		with data.params.clusters as _clusters
}

test_deny_not_production_when_neither_says_so if {
	not lib.production with input as {"target": {"cluster": "edge-1", "environment": "development"}}
		with data.params.clusters as _clusters
	not lib.production with input as {"target": {"cluster": "sandbox"}} with data.params.clusters as _clusters
}

test_allow_cluster_environment_is_undefined_without_data if {
	not lib.cluster_environment("sandbox") with data.params.clusters as _clusters
	lib.cluster_environment("uid-edge-1") == "staging" with data.params.clusters as _clusters
}

test_allow_palette_target_is_production_by_its_linked_context_glob if {
	clusters := {"prod-*": {"environment": "production"}, "prod-eu": {"palette_uid": "uid-eu"}}
	lib.production with input as {"backend": "palette", "target": {"cluster": "uid-eu"}}
		with data.params.clusters as clusters
	not lib.production with input as {"backend": "palette", "target": {"cluster": "uid-us"}}
		with data.params.clusters as clusters
}
