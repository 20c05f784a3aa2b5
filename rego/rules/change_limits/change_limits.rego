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

# The CPU and memory quantities that differ from the before-image, for containers
# whose resources changed at all (matched by field and name); old is null when the
# container or the quantity is new. Unchanged containers cost one comparison.
_changes contains change if {
	some entry in lib.write_containers
	before := object.get(_before, [[entry.field, entry.name]], null)
	entry.container.resources != before
	some section in _sections
	some resource in _params.resources
	new := entry.container.resources[section][resource]
	old := object.get(before, [section, resource], null)
	new != old
	change := {"field": entry.field, "name": entry.name, "section": section, "resource": resource, "new": new, "old": old}
}

# Comprehensions, not object rules: OPA re-evaluates an object rule's body for every key
# looked up. Each distinct quantity string is parsed once per decision.
# regal ignore:prefer-set-or-object-rule
_before := {[entry.field, entry.name]: object.get(entry.container, "resources", null) |
	some entry in lib.current_containers
}

# regal ignore:prefer-set-or-object-rule
_values := {text: value |
	some text in {quantity | some change in _changes; some quantity in [change.new, change.old]}
	value := lib.quantity(text)
}

violation contains reason if {
	some change in _changes
	change.old != null
	_too_far(_values[change.old], _values[change.new])
	msg := sprintf("%s '%s' %s %s changes from %v to %v, more than %v%%", [
		change.field,
		change.name,
		change.resource,
		_section_word[change.section],
		change.old,
		change.new,
		_params.max_change_percent,
	])
	reason := lib.reason(rego.metadata.chain(), msg)
}

violation contains reason if {
	some change in _changes
	not _valid(change.new)
	msg := sprintf("%s '%s' %s %s '%v' is not a valid quantity", [
		change.field,
		change.name,
		change.resource,
		_section_word[change.section],
		change.new,
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

_too_far(old, new) if new > old * _factor

_too_far(old, new) if new * _factor < old

_valid(text) if _values[text]
