# METADATA
# title: Known, well-formed actions only
# description: >-
#   Anything the policy does not recognise is refused: a tool not in the catalog
#   (data.params.catalog), an effect other than read, write or delete, a backend,
#   operation or effect that differs from the catalog's for that tool, a version other
#   than 1, a missing principal or target, a Kubernetes change without a kind or a
#   write without its object, a Palette change without its cluster, an object whose
#   kind contradicts the target's, a written pod spec with a container, volume or port
#   list that is not a list of objects or a securityContext that is not an object, or a
#   rollback that does not name the action it undoes. A guard: it denies whatever
#   data.params.modes says.
# custom:
#   code: GW-INPUT-001
#   severity: critical
#   mode: deny
#   guard: true
#   defence_in_depth: >-
#     The gateway builds every action from the catalog and validated arguments, so only a
#     malformed object reaches it: a custom resource whose schema lets a pod template
#     through untyped (k8s_apply). Its Rego tests feed it each malformed shape directly.
package rules.known_action

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

_catalog := data.params.catalog

_problems contains "the action is not a JSON object" if not is_object(input)

_problems contains "version must be 1" if {
	is_object(input)
	object.get(input, "version", null) != 1
}

_problems contains "tool is missing" if not _given.tool

_problems contains sprintf("tool '%s' is not in the catalog", [input.tool]) if {
	is_string(input.tool)
	not _catalog[input.tool]
}

_problems contains "effect must be read, write or delete" if not _given.effect

_problems contains sprintf("%s of tool '%s' must be '%s'", [field, input.tool, expected]) if {
	some field, expected in _catalog[input.tool]
	field in {"backend", "operation", "effect"}
	object.get(input, field, null) != expected
}

# A tool whose actions are judged as what they do (gateway_rollback: a Kubernetes delete,
# a Palette write) lists the backends and effects they may take.
_problems contains sprintf("%s of tool '%s' must be one of %s", [field, input.tool, concat(", ", expected)]) if {
	some plural, expected in _catalog[input.tool]
	some field in {"backend", "effect"}
	plural == concat("", [field, "s"])
	not object.get(input, field, null) in expected
}

_problems contains "a rollback must name the action it undoes (args.rollback_of)" if {
	input.operation == "rollback"
	not _given.rollback_of
}

_problems contains "principal is missing or malformed" if not _principal_ok

_problems contains "target is missing" if not _given.target

_problems contains "args must be an object" if {
	is_object(input)
	not is_object(object.get(input, "args", {}))
}

_problems contains "approvals must be a list" if {
	is_object(input)
	not is_array(object.get(input, "approvals", []))
}

_problems contains "a Kubernetes change needs the target kind" if {
	lib.k8s_change
	not _given.kind
}

_problems contains "a Kubernetes write needs the object as it would be written" if {
	input.backend == "kubernetes"
	input.effect == "write"
	not _given.object
}

_problems contains problem if {
	some problem in lib.malformed_pod_fields
}

_problems contains "creating a Palette cluster needs the cluster definition" if {
	input.backend == "palette"
	input.operation == "create_cluster"
	not _given.object
}

_problems contains "a Palette change needs the target cluster uid" if {
	input.backend == "palette"
	input.operation in {"update_cluster_profiles", "delete_cluster"}
	not _given.cluster
}

_problems contains sprintf("object kind '%s' contradicts target kind '%s'", [
	input.object.kind,
	input.target.kind,
]) if {
	is_string(input.object.kind)
	is_string(input.target.kind)
	lower(input.object.kind) != lower(input.target.kind)
}

# Which fields are present and well-typed. Checks negate these entries rather than
# `not is_string(input.tool)`: OPA evaluates a missing field inside a negated call as
# undefined, so that expression would never be true and the problem would go unseen.
_given["tool"] if is_string(input.tool)

_given["effect"] if input.effect in {"read", "write", "delete"}

_given["target"] if is_object(input.target)

_given["kind"] if _non_empty(input.target.kind)

_given["cluster"] if _non_empty(input.target.cluster)

_given["object"] if is_object(input.object)

_given["rollback_of"] if _non_empty(input.args.rollback_of)

_principal_ok if {
	_non_empty(input.principal.subject)
	is_boolean(input.principal.authenticated)
	is_array(input.principal.groups)
	every group in input.principal.groups {
		is_string(group)
	}
}

_non_empty(value) if {
	is_string(value)
	trim_space(value) != ""
}

violation contains reason if {
	not _well_formed
	some problem in _problems
	reason := object.union(_reason, {"message": problem})
}

# The common shapes in one body each, so a well-formed action costs one pass and the
# problems above are listed only for an action that fails it. Every condition here
# implies the absence of a problem above (a test holds the two together); a shape not
# covered here (Palette changes, a read carrying an object) takes the slow path, which
# decides alone. The leading equalities let OPA's rule index pick the one body to run.
_well_formed if {
	input.backend == "kubernetes"
	input.effect == "read"
	input.object == null
	_common
}

_well_formed if {
	input.backend == "kubernetes"
	input.effect == "write"
	_k8s_change_ok
	count(lib.malformed_pod_fields) == 0
}

_well_formed if {
	input.backend == "kubernetes"
	input.effect == "delete"
	_k8s_change_ok
}

_well_formed if {
	input.backend == "palette"
	input.effect == "read"
	input.object == null
	_common
}

_k8s_change_ok if {
	_common
	trim_space(input.target.kind) != ""

	# A missing object kind agrees with the target; a non-string one fails here.
	lower(object.get(input.object, "kind", input.target.kind)) == lower(input.target.kind)
}

_common if {
	input.version == 1
	object.subset(input, _catalog[input.tool])
	is_object(input.target)
	is_object(object.get(input, "args", {}))
	is_array(object.get(input, "approvals", []))
	_principal_ok
}
