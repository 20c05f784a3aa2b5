# METADATA
# title: Runaway protection
# description: >-
#   An agent in a loop makes many calls that are each allowed on their own. The gateway
#   passes the principal's recent activity (input.history: calls, writes and deletes over
#   the last minute and the last hour, across sessions, processes and replicas) and the
#   MCP session's (input.history.session). A count at or above a limit's needs_approval
#   threshold makes the call wait for a human; at or above its deny threshold the call is
#   refused. Limits are data, per environment (production's for the production
#   environments, else the target environment's, else default), each on one counter of
#   the principal or the session; a counter judges only the calls it counts (writes_*
#   writes and deletes, deletes_* deletes, calls_* every call).
# custom:
#   code: OPS-RUNAWAY-001
#   severity: high
#   mode: needs_approval
#   reached_by: ["*"]
package rules.runaway_protection

import data.lib

_params := data.params.rules.runaway_protection

_approval_reason := lib.approval_template(rego.metadata.chain(), _params.approval)

# The deny threshold refuses while the rule enforces; in warn or dryrun mode (an override
# in data.params.modes) both thresholds only report.
_deny_reason := object.union(_approval_reason, {"effect": "deny"}) if {
	_approval_reason.effect in {"deny", "needs_approval"}
} else := _approval_reason

# The leading input test lets OPA's rule index skip both bodies for an action that
# carries no history (the gateway does not count, or could not).
violation contains reason if {
	is_object(input.history)
	some limit in _limits
	value := _count(limit)
	value >= limit.deny
	reason := object.union(_deny_reason, {"message": _message(limit, value, "refused")})
}

violation contains reason if {
	is_object(input.history)
	some limit in _limits
	value := _count(limit)
	value >= limit.needs_approval
	value < object.get(limit, "deny", value + 1)
	reason := object.union(_approval_reason, {"message": _message(limit, value, "needs approval")})
}

default _environment := "default"

_environment := "production" if lib.production

_environment := input.target.environment if {
	not lib.production
	is_string(input.target.environment)
	is_array(_params.limits[input.target.environment])
}

_limits := _params.limits[_environment]

# The counter's value for the limit's scope, when the counter counts this kind of call.
_count(limit) := _scopes[limit.scope][limit.counter] if {
	[what, _] := split(limit.counter, "_last_")
	input.effect in _counted[what]
}

_scopes := {"principal": input.history, "session": object.get(input.history, "session", null)}

_counted := {
	"calls": {"read", "write", "delete"},
	"writes": {"write", "delete"},
	"deletes": {"delete"},
}

_who := {"principal": sprintf("principal '%s'", [input.principal.subject]), "session": "this MCP session"}

_message(limit, value, consequence) := sprintf("%s made %v %s in the last %s (%s, limit %v %s): %s", [
	_who[limit.scope],
	value,
	what,
	window,
	limit.counter,
	_threshold(limit, consequence),
	_where,
	consequence,
]) if {
	[what, window] := split(limit.counter, "_last_")
}

_where := "by default" if _environment == "default"

else := sprintf("in %s", [_environment])

_threshold(limit, "refused") := limit.deny

_threshold(limit, "needs approval") := limit.needs_approval
