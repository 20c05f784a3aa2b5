# METADATA
# title: Complete policy data
# description: >-
#   Rules read their parameters from bundle data; a missing or malformed parameter
#   could silently switch a rule off. Every action is refused until the data has the
#   approval defaults, the tool catalog, the production environments, the clusters
#   (an environment or Palette uid per cluster name, possibly none) and every
#   parameter each rule reads, of the right type (lists of strings, valid regular
#   expressions, numbers in range), every mode override a mode (and none on a guard
#   rule), every pre-existing setting warn or enforce, and the refusal names each
#   parameter that is not. A guard: it denies whatever data.params.modes says.
# custom:
#   code: GW-DATA-001
#   severity: critical
#   mode: deny
#   guard: true
#   defence_in_depth: >-
#     Bundle data, not a tool call, breaks it: a bad rego/data.json or a data update. Its
#     Rego tests and tests/integration/test_policy_data_guard.py break every parameter.
package rules.policy_data

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# What each rule's parameters must be; kept here, not in data: this rule checks the data.
# A parameter that is missing or of the wrong type does not fail loudly in the rule that
# reads it, it switches the check off: without write_approval, production writes needed
# no approval; a max_replicas written as text was never compared; one invalid pattern
# made the whole alternation, and so every hygiene check, match nothing.
_schema := {
	"approved_registries": {"registries": "strings"},
	"argument_hygiene": {
		"shell_patterns": "patterns",
		"injection_patterns": "patterns",
		"target_fields": "strings",
		"document_args": "strings",
	},
	"bounded_logs": {"max_log_lines": "count"},
	"change_limits": {"max_change_percent": "percent", "max_replicas": "count", "resources": "strings"},
	"cluster_scoped_writes": {"kinds": "strings"},
	"critical_workloads": {"name_patterns": "strings"},
	"destructive_actions": {"approval": "approval"},
	"external_services": {"internal_annotations": "annotations", "internal_ingress_classes": "strings"},
	"gpu_resources": {"resources": "strings", "instance_type_prefixes": "strings"},
	"no_dangerous_capabilities": {"allowed_capabilities": "strings"},
	"no_latest_tag": {"disallowed_tags": "strings"},
	"no_root": {"require_explicit_non_root": "boolean"},
	"pod_security_baseline": {
		"allowed_host_ports": "ports",
		"allowed_selinux_types": "strings",
		"allowed_sysctls": "strings",
	},
	"pod_security_restricted": {"allowed_volume_types": "strings", "allowed_added_capabilities": "strings"},
	"palette_clusters": {
		"max_nodes": "count",
		"delete_approval": "approval",
		"production_delete_approval": "approval",
	},
	"principal_scope": {"groups": "scopes", "unmapped": "scope", "unauthenticated_effects": "strings"},
	"production_protection": {"write_approval": "approval", "delete_approval": "approval"},
	"rbac_escalation": {"privileged_roles": "strings", "escalation_verbs": "strings"},
	"resource_limits": {"resources": "strings", "container_fields": "strings"},
	"rollback": {"max_age_seconds": "count", "stale_approval": "approval", "force_approval": "approval"},
	"runaway_protection": {"approval": "approval", "limits": "runaway_limits"},
	"secrets": {"kinds": "strings", "redact": "strings"},
	"untrusted_content": {"sources": "sources"},
}

_expected := {
	"strings": "a list of strings",
	"patterns": "a list of valid regular expressions",
	"count": "a whole number, 0 or more",
	"percent": "a number, 0 or more",
	"boolean": "true or false",
	"approval": "an object of min_approvals, ttl_seconds (each 1 or more) and allow_self_approval",
	"annotations": "an object of strings",
	"scope": "an object with effects, namespaces and clusters, each a list of strings",
	"scopes": "an object of scopes, each with effects, namespaces and clusters as lists of strings",
	"ports": "a list of port numbers, 1 to 65535",
	"sources": "a list of objects, each with tool and content as text and optionally kinds as a list of strings",
	"runaway_limits": concat(" ", [
		"an object of environments, with default, each a list of limits: scope (principal or session),",
		"counter (calls, writes or deletes _last_minute or _last_hour), needs_approval and/or deny",
		"(each 1 or more, needs_approval below deny)",
	]),
}

_catalog_problem := concat(" ", [
	"params.catalog must map each tool to its backend, operation and effect (read, write or delete),",
	"or to lists of the backends and effects it may take",
])

_problems contains "params.approval must set min_approvals, ttl_seconds, approver_groups and allow_self_approval" if {
	not _approval_ok
}

_problems contains _catalog_problem if {
	not _catalog_ok
}

_problems contains "params.production must list the environments and name the environment label" if {
	not _production_ok
}

_problems contains concat("", [
	"params.clusters must map cluster names or globs to objects of environment and ",
	"palette_uid, each a non-empty string",
]) if {
	not _clusters_ok
}

_problems contains sprintf("params.modes.%s must be one of deny, needs_approval, warn or dryrun", [name]) if {
	some name, value in _modes
	not value in lib.modes
}

_problems contains sprintf("params.modes.%s cannot be set: a guard rule always denies", [name]) if {
	some name, value in _modes
	name in lib.guards
	value != "deny"
}

_problems contains "params.modes must be an object of rule names and modes" if not is_object(_modes)

_problems contains "params.preexisting must be an object of rule names and {operation: warn or enforce} objects" if {
	not _preexisting_ok
}

_problems contains sprintf("params.preexisting.%s cannot be set: a guard rule's findings always count", [name]) if {
	some name, _ in object.get(data.params, "preexisting", {})
	name in lib.guards
}

_problems contains sprintf("params.rules.%s is missing", [name]) if {
	some name, _ in _schema
	not is_object(object.get(_rules, name, null))
}

_problems contains sprintf("params.rules.%s.%s must be %s", [rule, name, expected]) if {
	some rule, parameters in _schema
	is_object(_rules[rule])
	some name, kind in parameters
	not _valid(kind, object.get(_rules[rule], name, null))
	expected := _expected[kind]
}

# Anything but an object counts as no rule parameters at all, so that each rule's
# block is reported missing: a lookup into a string or a list would be undefined,
# and the problems with it.
default _rules := {}

_rules := data.params.rules if is_object(data.params.rules)

_modes := object.get(data.params, "modes", {})

_preexisting_ok if {
	settings := object.get(data.params, "preexisting", {})
	is_object(settings)
	every _, operations in settings {
		is_object(operations)
		every _, setting in operations {
			setting in {"warn", "enforce"}
		}
	}
}

# The defaults must set every setting a rule's override may set, by the same measure.
_approval_ok if {
	_strings(data.params.approval.approver_groups)
	every name in ["min_approvals", "ttl_seconds", "allow_self_approval"] {
		_approval_setting(name, data.params.approval[name])
	}
}

_catalog_ok if {
	is_object(data.params.catalog)
	count(data.params.catalog) > 0
	every entry in data.params.catalog {
		is_string(entry.operation)
		_catalog_entry_ok(entry)
	}
}

_effects := {"read", "write", "delete"}

# One backend and effect, or (a tool like gateway_rollback whose actions are judged as
# what they do) the non-empty lists of those it may take.
_catalog_entry_ok(entry) if {
	is_string(entry.backend)
	entry.effect in _effects
	not "backends" in object.keys(entry)
	not "effects" in object.keys(entry)
}

_catalog_entry_ok(entry) if {
	not "backend" in object.keys(entry)
	not "effect" in object.keys(entry)
	_strings(entry.backends)
	count(entry.backends) > 0
	_strings(entry.effects)
	count(entry.effects) > 0
	every effect in entry.effects {
		effect in _effects
	}
}

_production_ok if {
	_strings(data.params.production.environments)
	is_string(data.params.production.environment_label)
}

# A misspelt field ("enviroment") would leave a production cluster unprotected: only
# the two known fields are accepted.
_clusters_ok if {
	is_object(data.params.clusters)
	every entry in data.params.clusters {
		is_object(entry)
		every field, value in entry {
			field in {"environment", "palette_uid"}
			is_string(value)
			trim_space(value) != ""
		}
	}
}

_valid("strings", value) if _strings(value)

_valid("patterns", value) if {
	_strings(value)
	every pattern in value {
		regex.is_valid(pattern)
	}
}

_valid("count", value) if {
	_count(value)
	value >= 0
}

_valid("percent", value) if {
	is_number(value)
	value >= 0
}

_valid("boolean", value) if is_boolean(value)

_valid("approval", value) if {
	is_object(value)
	every name, setting in value {
		_approval_setting(name, setting)
	}
}

_valid("annotations", value) if {
	is_object(value)
	every _, text in value {
		is_string(text)
	}
}

_valid("scope", value) if _scope(value)

_valid("ports", value) if {
	is_array(value)
	every port in value {
		_count(port)
		port >= 1
		port <= 65535
	}
}

_valid("sources", value) if {
	is_array(value)
	every source in value {
		is_object(source)
		is_string(source.tool)
		is_string(source.content)
		_strings(object.get(source, "kinds", []))
		every field, _ in source {
			field in {"tool", "content", "kinds"}
		}
	}
}

_valid("scopes", value) if {
	is_object(value)
	every _, scope in value {
		_scope(scope)
	}
}

_valid("runaway_limits", value) if {
	is_array(value.default)
	every _, limits in value {
		is_array(limits)
		every limit in limits {
			_runaway_limit(limit)
		}
	}
}

_runaway_limit(limit) if {
	limit.scope in {"principal", "session"}
	limit.counter in {
		"calls_last_minute", "calls_last_hour",
		"writes_last_minute", "writes_last_hour",
		"deletes_last_minute", "deletes_last_hour",
	}
	count(object.remove(limit, ["scope", "counter", "needs_approval", "deny"])) == 0
	thresholds := object.filter(limit, ["needs_approval", "deny"])
	count(thresholds) > 0
	lowest := object.get(thresholds, "needs_approval", 0)
	lowest < object.get(thresholds, "deny", lowest + 1)
	every _, threshold in thresholds {
		_count(threshold)
		threshold >= 1
	}
}

_strings(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

_scope(value) if {
	is_object(value)
	every field in ["effects", "namespaces", "clusters"] {
		_strings(object.get(value, field, null))
	}
}

_count(value) if {
	is_number(value)
	round(value) == value
}

_approval_setting("min_approvals", value) if {
	_count(value)
	value >= 1
}

_approval_setting("ttl_seconds", value) if {
	is_number(value)
	value >= 1
}

_approval_setting("allow_self_approval", value) if is_boolean(value)

_guard_mode_ok(name, _) if not name in lib.guards

_guard_mode_ok(_, "deny")

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
	_clusters_ok
	_preexisting_ok
	is_object(_modes)
	every name, value in _modes {
		value in lib.modes
		_guard_mode_ok(name, value)
	}
	every name, _ in object.get(data.params, "preexisting", {}) {
		not name in lib.guards
	}
	every rule, parameters in _schema {
		every name, kind in parameters {
			_valid(kind, object.get(_rules, [rule, name], null))
		}
	}
}
