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
package rules.critical_workloads

import data.lib

_names contains input.target.name if is_string(input.target.name)

_names contains input.object.metadata.name if is_string(input.object.metadata.name)

_names contains input.current.metadata.name if is_string(input.current.metadata.name)

violation contains reason if {
	lib.change
	some name in _names
	some pattern in data.params.rules.critical_workloads.name_patterns
	contains(lower(name), lower(pattern))
	msg := sprintf("'%s' matches critical workload pattern '%s'", [name, pattern])
	reason := lib.approval_reason(rego.metadata.chain(), msg, {})
}
