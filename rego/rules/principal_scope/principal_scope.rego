# METADATA
# title: Principal scope
# description: >-
#   Groups map to the effects, Kubernetes namespaces and clusters (kube context or
#   Palette cluster uid, either matching when data.params.clusters links the two) their
#   members may act in (data.params.rules.principal_scope.groups;
#   "*" and globs allowed). A principal none of whose groups is mapped gets the
#   explicit "unmapped" scope (default: read anywhere, change nothing). An
#   unauthenticated principal may only read, whatever its groups.
# custom:
#   code: GW-SCOPE-001
#   severity: high
#   mode: deny
package rules.principal_scope

import data.lib

_params := data.params.rules.principal_scope

_reason := lib.reason_template(rego.metadata.chain())

# Any mapped group whose scope allows the action, or the unmapped scope when none of
# the principal's groups is mapped. Reasons and their wording are built only when
# this fails: nearly every action is in scope.
_in_scope if {
	is_array(input.principal.groups)
	some group in input.principal.groups
	_allows(_params.groups[group])
}

_in_scope if {
	not _mapped
	_allows(_params.unmapped)
}

_mapped if {
	is_array(input.principal.groups)
	some group in input.principal.groups
	_params.groups[group]
}

_allows(scope) if {
	input.effect in scope.effects
	_cluster_allowed(scope)
	_namespace_allowed(scope)
}

# `==`, not a negated call: `not f(input.x)` is undefined, not true, when the field is
# missing; a negated comparison is rewritten so that it holds.
violation contains reason if {
	not input.principal.authenticated == true
	not _anonymous_effect
	msg := sprintf("an unauthenticated principal may not %v", [object.get(input, "effect", "act")])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	not _in_scope
	msg := sprintf("principal '%v' (groups: %s) may not %s %s; %s", [
		_subject,
		_group_list,
		object.get(input, "effect", "act"),
		_where,
		_instead,
	])
	reason := object.union(_reason, {"message": msg})
}

_anonymous_effect if input.effect in _params.unauthenticated_effects

_cluster_allowed(scope) if "*" in scope.clusters

# Under any name the cluster goes by: its kube context or its Palette uid, when
# data.params.clusters links the two (lib.cluster_names).
_cluster_allowed(scope) if {
	some pattern in scope.clusters
	some name in lib.cluster_names
	lib.matches(pattern, name)
}

# Palette targets have no namespace; cluster-scoped reads (nodes, cluster info) need
# only the cluster.
_namespace_allowed(_) if input.backend == "palette"

_namespace_allowed(scope) if "*" in scope.namespaces

_namespace_allowed(scope) if {
	some pattern in scope.namespaces
	lib.matches(pattern, input.target.namespace)
}

_namespace_allowed(_) if {
	input.effect == "read"
	object.get(input.target, "namespace", null) == null
	object.get(input.target, "all_namespaces", false) == false
}

# The wording of a denial, built only for one.
default _groups := []

_groups := input.principal.groups if is_array(input.principal.groups)

_has["namespace"] if is_string(input.target.namespace)

_has["cluster"] if is_string(input.target.cluster)

_group_list := concat(", ", _groups) if count(_groups) > 0

_group_list := "none" if count(_groups) == 0

_target := input.target

_where := sprintf("in namespace '%s' of cluster '%s'", [_target.namespace, _target.cluster]) if {
	_has.namespace
	_has.cluster
}

_where := sprintf("in namespace '%s' without naming a cluster", [_target.namespace]) if {
	_has.namespace
	not _has.cluster
}

_where := sprintf("in cluster '%s'", [_target.cluster]) if {
	not _has.namespace
	_has.cluster
}

# A fleet-wide call (a Palette cluster listing, say) names no cluster: it reaches all of them.
_where := "across all clusters" if {
	not _has.namespace
	not _has.cluster
}

_subject := input.principal.subject if _has.subject

_subject := "<unknown>" if not _has.subject

_has["subject"] if is_string(input.principal.subject)

# What the principal may do instead: where the scopes of its groups (or the unmapped
# scope) allow this effect, or which effects they allow at all.
_scopes contains scope if {
	some group in _groups
	scope := _params.groups[group]
}

_scopes contains _params.unmapped if not _mapped

_allowing contains scope if {
	some scope in _scopes
	input.effect in scope.effects
}

_listed(values) := concat(", ", sort(values)) if count(values) > 0

_listed(values) := "none" if count(values) == 0

_allowed_namespaces contains namespace if {
	some scope in _allowing
	some namespace in scope.namespaces
}

_allowed_clusters contains cluster if {
	some scope in _allowing
	some cluster in scope.clusters
}

_scope_effects contains effect if {
	some scope in _scopes
	some effect in scope.effects
}

_instead := sprintf("it may %s in clusters %s", [input.effect, _listed(_allowed_clusters)]) if {
	count(_allowing) > 0
	input.backend == "palette"
}

_instead := sprintf("it may %s in namespaces %s of clusters %s", [
	input.effect,
	_listed(_allowed_namespaces),
	_listed(_allowed_clusters),
]) if {
	count(_allowing) > 0
	input.backend != "palette"
}

_instead := sprintf("its groups allow it to %s nowhere (they allow: %s)", [
	object.get(input, "effect", "act"),
	_listed(_scope_effects),
]) if {
	count(_allowing) == 0
}
