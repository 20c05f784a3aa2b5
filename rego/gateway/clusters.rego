package gateway

import data.lib

# METADATA
# title: Cluster environments
# description: >-
#   For k8s_clusters: the environment policy data gives each cluster named in
#   input.clusters (kube context names), as lib.cluster_environment decides it (by
#   exact name, glob or linked Palette uid; production wins over any other). Clusters
#   data says nothing about are left out.
# entrypoint: true
cluster_environments[name] := environment if {
	some name in input.clusters
	is_string(name)
	environment := lib.cluster_environment(name)
}
