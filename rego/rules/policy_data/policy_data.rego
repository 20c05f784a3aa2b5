# METADATA
# title: Complete policy data
# description: >-
#   Rules read their parameters from bundle data; a missing or malformed parameter
#   block could silently switch a rule off. Every action is refused until the data
#   has the approval defaults, the tool catalog, the production environments and a
#   parameter block for every rule that needs one.
# custom:
#   code: GW-DATA-001
#   severity: critical
#   mode: deny
package rules.policy_data

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# Kept here, not in data: this rule checks the data.
_rules_with_parameters := {
	"approved_registries", "argument_hygiene", "bounded_logs", "change_limits",
	"cluster_scoped_writes", "critical_workloads", "destructive_actions", "external_services",
	"gpu_resources", "no_dangerous_capabilities", "no_latest_tag", "no_root",
	"palette_clusters", "principal_scope", "production_protection", "rbac_escalation",
	"resource_limits", "secrets",
}

_problems contains "params.approval must set min_approvals, ttl_seconds, approver_groups and allow_self_approval" if {
	not _approval_ok
}

_problems contains "params.catalog must list the tools" if not _catalog_ok

_problems contains "params.production.environments must be a list" if not _production_ok

_problems contains sprintf("params.rules.%s is missing", [name]) if {
	some name in (_rules_with_parameters - _rule_blocks)
}

_approval_ok if {
	is_number(data.params.approval.min_approvals)
	data.params.approval.min_approvals >= 1
	is_number(data.params.approval.ttl_seconds)
	data.params.approval.ttl_seconds >= 1
	is_array(data.params.approval.approver_groups)
	is_boolean(data.params.approval.allow_self_approval)
}

_catalog_ok if count(data.params.catalog) > 0

_production_ok if is_array(data.params.production.environments)

_rule_blocks contains name if {
	some name, block in data.params.rules
	is_object(block)
}

violation contains reason if {
	not _complete
	some problem in _problems
	reason := object.union(_reason, {"message": sprintf("policy data is incomplete: %s", [problem])})
}

# Every check above in one body: complete data (every decision) costs one pass, and
# the problems are listed only when it fails. Each condition here implies the
# absence of the matching problem.
_complete if {
	_approval_ok
	_catalog_ok
	_production_ok
	every name in _rules_with_parameters {
		is_object(data.params.rules[name])
	}
}
