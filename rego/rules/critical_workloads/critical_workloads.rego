# METADATA
# title: Critical workloads need approval
# description: >-
#   Databases, caches, etcd, controllers and operators (name patterns in data, matched
#   as case-insensitive substrings of the target's or object's name) hold state or run
#   other workloads; any change to them needs approval.
# custom:
#   code: OPS-CRIT-001
#   severity: high
#   mode: needs_approval
#   reached_by:
#     - k8s_apply
#     - k8s_scale
#     - k8s_restart
#     - k8s_set_resources
#     - k8s_delete
#     - gateway_rollback
package rules.critical_workloads

import data.lib

_reason := lib.approval_template(rego.metadata.chain(), {})

_names contains input.target.name if is_string(input.target.name)

_names contains input.object.metadata.name if is_string(input.object.metadata.name)

_names contains input.current.metadata.name if is_string(input.current.metadata.name)

# The patterns in a comprehension: iterated directly, the optimizer would unroll them into
# one body per pattern, each looking at _critical_names again.
violation contains reason if {
	some name in _critical_names
	some pattern in [pattern | some pattern in _patterns; contains(lower(name), lower(pattern))]
	msg := sprintf("'%s' matches critical workload pattern '%s'", [name, pattern])
	reason := object.union(_reason, {"message": msg})
}

# The names some pattern matches: one match per name; only these are compared pattern by
# pattern, to say which.
_critical_names contains name if {
	lib.change
	some name in _names
	regex.match(_any_pattern, lower(name))
}

_patterns := data.params.rules.critical_workloads.name_patterns

# Every pattern, lower-cased, as one alternation of literals (constant once the bundle's
# data is known), matched against the lower-cased name: the same test as contains() on
# lower() (a (?i) match would fold case differently for some letters, like "İ"), at one
# match per name; only a name that matches is compared pattern by pattern to say which.
_any_pattern := lib.any_of([lib.regex_literal(lower(pattern)) | some pattern in _patterns])
