package lib

# Clusters as policy data knows them. data.params.clusters maps a kube context name, or
# a glob over context names, to what policy should know about that cluster:
#
#   "prod-*":  {"environment": "production"}
#   "prod-eu": {"environment": "production", "palette_uid": "6f0c…"}
#
# `environment` holds for every target in the cluster, whatever its namespace labels say;
# `palette_uid` says that the Palette cluster with that uid is the same cluster, so a
# principal scope or environment given under either name applies to both.

# METADATA
# scope: document
# description: |
#   Every name a cluster goes by: the name itself (a kube context or a Palette cluster
#   uid) and the other identity an exact data.params.clusters entry links to it (the
#   entry's key is the context name, its palette_uid the Palette uid).
names_of_cluster(name) := ({name} | {context |
	some context, entry in data.params.clusters
	entry.palette_uid == name
}) | {uid | uid := data.params.clusters[name].palette_uid}

# METADATA
# scope: document
# description: Every name the target's cluster goes by (see names_of_cluster).
cluster_names contains name if {
	is_string(input.target.cluster)
	some name in names_of_cluster(input.target.cluster)
}

# METADATA
# scope: document
# description: |
#   The environments data.params.clusters gives any of the names, by exact name or glob;
#   empty when data says nothing about them.
environments_of_clusters(names) := {entry.environment |
	some name in names
	some pattern, entry in data.params.clusters
	matches(pattern, name)
	is_string(entry.environment)
}

# METADATA
# scope: document
# description: |
#   The one environment data gives a cluster, under any of its names: a production one
#   when any entry says so (the most restrictive wins; the first in sorted order among
#   several), else the first in sorted order; undefined when data says nothing.
cluster_environment(name) := min(restrictive) if {
	found := environments_of_clusters(names_of_cluster(name))
	restrictive := {env | some env in found; lower(env) in _production_environments}
	count(restrictive) > 0
} else := min(environments_of_clusters(names_of_cluster(name)))

# METADATA
# scope: document
# description: Policy data names the target's cluster, under any of its names, a production cluster.
cluster_production if {
	some env in environments_of_clusters(cluster_names)
	lower(env) in _production_environments
}
