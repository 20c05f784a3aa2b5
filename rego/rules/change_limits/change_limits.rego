# METADATA
# title: Change limits
# description: >-
#   A CPU or memory request or limit raised or cut by more than max_change_percent
#   (data, default 500%) against the live object, per container by name, is refused:
#   such jumps are typos (500 for 500m) more often than plans. Quantities are parsed
#   ("500m", "128Mi", "1e3"), and one that cannot be parsed is refused. Replicas above
#   max_replicas (data) are refused too.
# custom:
#   code: OPS-CHANGE-001
#   severity: medium
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_set_resources, gateway_rollback]
package rules.change_limits

import data.lib

_params := data.params.rules.change_limits

_reason := lib.reason_template(rego.metadata.chain())

# Containers whose resources differ from the before-image (matched by field and
# name), with that image or null: an unchanged container costs one lookup and one
# comparison. A rule of its own so that the loops below, which the optimizer unrolls
# over the sections and resources, repeat only over changed containers.
_changed contains [entry, before] if {
	some entry in lib.write_containers
	before := object.get(lib.current_resources, [[entry.field, entry.name]], null)
	entry.container.resources != before
}

# The CPU and memory quantities that changed, as [field, name, section, resource, new,
# old]; old is null when the container or the quantity is new.
_changes contains [entry.field, entry.name, section, resource, new, old] if {
	some [entry, before] in _changed
	some section in ["requests", "limits"]
	some resource in _params.resources
	new := entry.container.resources[section][resource]
	old := object.get(before, [section, resource], null)
	new != old
}

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some [field, name, section, resource, new, old] in _changes
	old != null
	_exceeds(old, new)
	msg := sprintf("%s '%s' %s %s changes from %v to %v, more than %v%%", [
		field,
		name,
		resource,
		_section_word[section],
		old,
		new,
		_params.max_change_percent,
	])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some [field, name, section, resource, new, _] in _changes
	not lib.quantity(new)
	msg := sprintf("%s '%s' %s %s '%v' is not a valid quantity", [
		field,
		name,
		resource,
		_section_word[section],
		new,
	])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.k8s_object_write
	replicas := input.object.spec.replicas
	is_number(replicas)
	replicas > _params.max_replicas
	msg := sprintf("%v replicas for '%s' exceed the maximum of %v", [replicas, lib.target_name, _params.max_replicas])
	reason := object.union(_reason, {"message": msg})
}

# Whether a valid quantity old, changed to the valid quantity new, is raised or cut by
# more than the factor: true or false, undefined when either is invalid. A function of
# the two texts, not expressions in the violation body, because OPA caches a function's
# result per arguments within a decision (a defined one only: hence a boolean, not a
# test) and requests and limits usually change alike: each distinct pair is parsed and
# compared once. lib.quantity is cached the same way, per text.
#
# One comparison with one product: for a factor of at least 1 this is new > old * factor
# or old > new * factor, and a negative value always counts. Arithmetic on fractions
# (CPU) costs OPA big floats, so it is worth doing once.
_exceeds(old, new) := exceeds if {
	old_value := lib.quantity(old)
	new_value := lib.quantity(new)
	exceeds := max([new_value, old_value]) > (_factor * min([new_value, old_value]))
}

_factor := 1 + (_params.max_change_percent / 100)

_section_word := {"requests": "request", "limits": "limit"}
