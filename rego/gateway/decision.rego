# METADATA
# title: Gateway decision
# description: >-
#   Combines every rule under data.rules into the decision document: deny wins over
#   needs_approval, which wins over allow; warn and dryrun reasons never block.
package gateway

import data.lib

# Iterating the ref, not `some pkg in data.rules`, evaluates only each package's
# violation rule instead of every rule (and, under opa test, every test).
_violations contains violation if {
	some name

	# regal ignore:mixed-iteration
	some violation in data.rules[name].violation
}

# Pre-existing findings. A blocking finding of a rule whose pre-existing findings only
# warn for this operation (data.params.preexisting[rule][operation] == "warn") is
# pre-existing when the live object (input.current) gets the same reason from the same
# rule, and the write leaves the object's pod specs as they were apart from container
# resources (what k8s_set_resources changes). It then counts as a warning that says so.
# Anything the write introduces or changes is judged as it is: a new reason, a reason
# whose message differs (a higher count, another image), or any other change to a pod
# spec (an image, a command, a volume) makes every reason count. Only the rules with
# such findings are evaluated again, against the before-image, and only when there are
# such findings: the common path pays one lookup per reason.
_downgradable contains v if {
	input.operation in _warn_operations
	is_object(input.current)
	some v in _violations
	_preexisting_modes[v.rule][input.operation] == "warn"
	v.effect in {"deny", "needs_approval"}
	not v.rule in lib.guards
}

# The operations any rule's pre-existing findings may warn for: folded at build time,
# so that every other operation (an apply) stops at one membership test.
_warn_operations contains operation if {
	some operations in _preexisting_modes
	some operation, setting in operations
	setting == "warn"
}

default _preexisting_modes := {}

_preexisting_modes := data.params.preexisting if is_object(data.params.preexisting)

_before contains [name, before.message] if {
	lib.pod_shape(input.object) == lib.pod_shape(input.current)
	some name in {v.rule | some v in _downgradable}

	# The rules judge the before-image in place of the object: the one use of `with`
	# outside tests, and the point of this rule.
	# regal ignore:with-outside-test-context
	some before in data.rules[name].violation with input.object as input.current
}

_preexisting contains v if {
	some v in _downgradable
	[v.rule, v.message] in _before
}

_as_preexisting(v) := object.union(v, {
	"effect": "warn",
	"message": sprintf("pre-existing, unchanged by this %s: %s", [input.tool, v.message]),
})

# A reason whose effect is not a known mode is treated as a denial: fail closed. A
# pre-existing reason counts as a warning instead; the membership tests below run
# only for blocking reasons, of which a decision has few.
_denials contains _public(v) if {
	some v in _violations
	not v.effect in {"needs_approval", "warn", "dryrun"}
	not v in _preexisting
}

_approval_violations contains v if {
	some v in _violations
	v.effect == "needs_approval"
	not v in _preexisting
}

_warnings contains _public(v) if {
	some v in _violations
	v.effect == "warn"
}

_warnings contains _public(_as_preexisting(v)) if {
	some v in _preexisting
}

_dryruns contains _public(v) if {
	some v in _violations
	v.effect == "dryrun"
}

_public(v) := object.remove(v, ["approval"])

# What every approval reason asks for, with the defaults from data filled in.
_requirements contains object.union(data.params.approval, object.get(v, "approval", {})) if {
	some v in _approval_violations
}

# METADATA
# scope: document
# description: |
#   The strictest requirement of all needs_approval reasons: the most approvals, the
#   shortest TTL, self-approval only if every reason allows it; approver groups come
#   from data. With no approval reason it is the default from data.
requirement := {
	"min_approvals": max({r.min_approvals | some r in _requirements}),
	"approver_groups": data.params.approval.approver_groups,
	"ttl_seconds": min({r.ttl_seconds | some r in _requirements}),
	"allow_self_approval": count({r | some r in _requirements; r.allow_self_approval != true}) == 0,
} if {
	count(_requirements) > 0
}

requirement := object.filter(
	data.params.approval,
	["min_approvals", "approver_groups", "ttl_seconds", "allow_self_approval"],
) if {
	count(_requirements) == 0
}

# Defaults and else-chains here and below, not bodies negating each other: OPA
# evaluates every body.
default _approvals := []

_approvals := input.approvals if is_array(input.approvals)

_now := time.parse_rfc3339_ns(input.time)

# METADATA
# description: The distinct subjects whose approvals satisfy the requirement.
approvers contains approval.subject if {
	some approval in _approvals
	_counts(approval)
}

_counts(approval) if {
	lib.matches("?*", approval.subject)
	_self_ok(approval)
	_group_ok(approval)
	_fresh(approval)
}

_self_ok(_) if requirement.allow_self_approval == true

_self_ok(approval) if approval.subject != input.principal.subject

_group_ok(_) if count(requirement.approver_groups) == 0

_group_ok(approval) if {
	some group in approval.groups
	group in requirement.approver_groups
}

_fresh(approval) if {
	approved := time.parse_rfc3339_ns(approval.approved_at)
	approved <= _now
	_now - approved <= requirement.ttl_seconds * 1000000000
}

_quorum if count(approvers) >= requirement.min_approvals

# Why approvals that were given did not count, for the quorum reason's message.
_shortfalls contains "self-approval not allowed" if {
	some approval in _approvals
	not _self_ok(approval)
}

_shortfalls contains sprintf("approvers must be in %s", [concat(", ", requirement.approver_groups)]) if {
	some approval in _approvals
	not _group_ok(approval)
}

_shortfalls contains sprintf("approvals expire after %vs or had an invalid time", [requirement.ttl_seconds]) if {
	some approval in _approvals
	not _fresh(approval)
}

# METADATA
# title: Approval quorum
# description: >-
#   On re-evaluation, approvals count only from distinct approvers in the approver
#   groups, within the TTL, and not from the requester unless self-approval is
#   allowed; too few keep the action waiting and say what is missing.
# custom:
#   code: GW-APPROVAL-001
#   severity: medium
#   mode: needs_approval
#   reached_by: ["*"]
approval_quorum contains reason if {
	count(_approval_violations) > 0
	count(_approvals) > 0
	not _quorum
	msg := concat("; ", array.concat(
		[sprintf("%d of %d approvals", [count(approvers), requirement.min_approvals])],
		sort(_shortfalls),
	))

	# The template inline: this rule's own METADATA carries the code, and the rule runs
	# only when approvals were given and fell short.
	reason := object.union(lib.reason_template(rego.metadata.chain()), {"message": msg})
}

default _outcome := "allow"

_outcome := "deny" if count(_denials) > 0

else := "needs_approval" if {
	count(_approval_violations) > 0
	not _quorum
}

_reasons := array.concat(
	array.concat(sort(_denials), sort({_public(v) | some v in _approval_violations})),
	sort(approval_quorum),
)

# A rule, not a comprehension: the optimizer resolves a rule's data.rules[name] to the
# packages that define redact (one lookup, not one per package).
_redact_paths contains path if {
	some name

	# regal ignore:mixed-iteration
	some path in data.rules[name].redact
}

_redact := sort(_redact_paths)

# What this read returns that the cluster's users or workloads control (rules'
# `untrusted` sets): the gateway marks the session that read it.
_untrusted_contents contains content if {
	some name

	# regal ignore:mixed-iteration
	some content in data.rules[name].untrusted
}

_line_caps contains lines if {
	some name
	lines := data.rules[name].max_log_lines
	is_number(lines)
}

default _max_log_lines := null

_max_log_lines := min(_line_caps) if count(_line_caps) > 0

_approval_block := {"approval": requirement} if {
	count(_approval_violations) + count(_approvals) > 0
}

# Not an else or a default: with a broken requirement the block, and so the decision,
# must stay undefined (fail closed to the default decision).
_approval_block := {} if count(_approval_violations) + count(_approvals) == 0

# METADATA
# title: Decision
# description: >-
#   The decision document the gateway asks for. It is always defined: when the policy
#   cannot evaluate an input at all, the default denies with GW-EVAL-001.
# entrypoint: true
# custom:
#   code: GW-EVAL-001
#   severity: critical
#   mode: deny
#   defence_in_depth: >-
#     Only an input the policy cannot evaluate at all reaches it; the gateway always sends a
#     well-formed action. Its Rego test and the garbage-input tests of the samples suite
#     send such inputs directly.
default decision := {
	"outcome": "deny",
	"reasons": [{
		"code": "GW-EVAL-001",
		"rule": "decision",
		"severity": "critical",
		"effect": "deny",
		"message": "the policy could not evaluate this action",
	}],
	"obligations": {"redact": [], "max_log_lines": null, "untrusted": []},
	"warnings": [],
	"dryrun": [],
}

decision := object.union(
	{
		"outcome": _outcome,
		"reasons": _reasons,
		"obligations": {"redact": _redact, "max_log_lines": _max_log_lines, "untrusted": sort(_untrusted_contents)},
		"warnings": sort(_warnings),
		"dryrun": sort(_dryruns),
	},
	_approval_block,
)
