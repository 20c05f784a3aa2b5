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
package rules.change_limits

import data.lib

_params := data.params.rules.change_limits

_factor := 1 + (_params.max_change_percent / 100)

_sections := ["requests", "limits"]

# Quantities of the after-image, by container; the before-image's are looked up by name.
_changes contains change if {
	lib.k8s_object_write
	is_object(input.current)
	some entry in lib.containers(input.object)
	some section in _sections
	some resource in _params.resources
	new := entry.container.resources[section][resource]
	change := {"entry": entry, "section": section, "resource": resource, "new": new}
}

violation contains reason if {
	some change in _changes
	before := _previous(change)
	old := lib.quantity(before)
	new := lib.quantity(change.new)
	_too_far(old, new)
	msg := sprintf("%s '%s' %s %s changes from %v to %v, more than %v%%", [
		change.entry.field,
		change.entry.name,
		change.resource,
		_section_word[change.section],
		before,
		change.new,
		_params.max_change_percent,
	])
	reason := lib.reason(rego.metadata.chain(), msg)
}

violation contains reason if {
	lib.k8s_object_write
	some entry in lib.containers(input.object)
	some section in _sections
	some resource in _params.resources
	quantity := entry.container.resources[section][resource]
	not lib.quantity(quantity)
	msg := sprintf("%s '%s' %s %s '%v' is not a valid quantity", [
		entry.field,
		entry.name,
		resource,
		_section_word[section],
		quantity,
	])
	reason := lib.reason(rego.metadata.chain(), msg)
}

violation contains reason if {
	lib.k8s_object_write
	replicas := input.object.spec.replicas
	is_number(replicas)
	replicas > _params.max_replicas
	msg := sprintf("%v replicas for '%s' exceed the maximum of %v", [replicas, lib.target_name, _params.max_replicas])
	reason := lib.reason(rego.metadata.chain(), msg)
}

_section_word := {"requests": "request", "limits": "limit"}

_previous(change) := quantity if {
	some before in lib.containers(input.current)
	before.field == change.entry.field
	before.name == change.entry.name
	quantity := before.container.resources[change.section][change.resource]
}

_too_far(old, new) if new > old * _factor

_too_far(old, new) if new * _factor < old
