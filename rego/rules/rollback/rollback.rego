# METADATA
# title: Rollbacks
# description: >-
#   A rollback (gateway_rollback) is judged as the change it makes, so every other rule
#   applies to it as to any write or delete: in production it needs approval without
#   self-approval (production_protection), a delete it makes needs what deletes need,
#   a restored pod spec is checked like an applied one. On top of those, a human
#   confirms a rollback forced over changes made since the gateway's write
#   (force_approval), and one of an action older than max_age_seconds (stale_approval),
#   since later work may build on it; a rollback whose age is unknown counts as old. A
#   rollback of a rollback is a rollback like any other.
# custom:
#   code: OPS-ROLLBACK-001
#   severity: high
#   mode: needs_approval
#   reached_by: [gateway_rollback]
package rules.rollback

import data.lib

_params := data.params.rules.rollback

_force_reason := lib.approval_template(rego.metadata.chain(), _params.force_approval)

_stale_reason := lib.approval_template(rego.metadata.chain(), _params.stale_approval)

default _undone := "an action"

_undone := input.args.original_tool if is_string(input.args.original_tool)

violation contains reason if {
	input.operation == "rollback"
	input.args.force == true
	msg := sprintf("rolling back %s on '%s' by force, over what changed since the gateway's write", [
		_undone,
		lib.target_name,
	])
	reason := object.union(_force_reason, {"message": msg})
}

violation contains reason if {
	input.operation == "rollback"
	input.args.age_seconds > _params.max_age_seconds
	msg := sprintf("rolling back %s on '%s' that ran %s ago, longer than %s", [
		_undone,
		lib.target_name,
		_duration(input.args.age_seconds),
		_duration(_params.max_age_seconds),
	])
	reason := object.union(_stale_reason, {"message": msg})
}

violation contains reason if {
	input.operation == "rollback"
	not _age_known
	msg := sprintf("rolling back %s on '%s' whose age is unknown", [_undone, lib.target_name])
	reason := object.union(_stale_reason, {"message": msg})
}

_age_known if {
	is_number(input.args.age_seconds)
	input.args.age_seconds >= 0
}

_duration(seconds) := sprintf("%dd %dh", [floor(seconds / 86400), floor((seconds % 86400) / 3600)]) if {
	seconds >= 86400
} else := sprintf("%dh %dm", [floor(seconds / 3600), floor((seconds % 3600) / 60)]) if {
	seconds >= 3600
} else := sprintf("%ds", [seconds])
