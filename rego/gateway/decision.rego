# METADATA
# title: Gateway decision
# description: The decision document every proposed action is judged by.
package gateway

# METADATA
# title: Decision
# description: Placeholder until the rule set lands; denies everything.
# entrypoint: true
# custom:
#   code: GW-000
#   severity: high
decision := {
	"outcome": "deny",
	"reasons": [{
		"code": "GW-000",
		"rule": "placeholder",
		"severity": "high",
		"effect": "deny",
		"message": "no policy installed",
	}],
}
