# METADATA
# title: Changes after untrusted content need approval
# description: >-
#   Pod logs, events and other text that the cluster's users and workloads write can
#   carry instructions planted for the model (prompt injection). A read of such content
#   (sources in data: a tool, optionally only for some target kinds, and what it
#   returns) marks the MCP session that made it: the decision names the content in
#   obligations.untrusted and the gateway remembers it for that session. Every later
#   write or delete of the session carries the reads in input.session.untrusted_reads,
#   and needs a human to approve it. Off switch: "modes": {"untrusted_content": "warn"}
#   lets such changes through with a warning, "dryrun" only records them; removing a
#   source stops its reads from marking sessions.
# custom:
#   code: GW-TAINT-001
#   severity: high
#   mode: needs_approval
#   reached_by: [k8s_logs, k8s_events, k8s_diagnose, palette_cluster_events]
package rules.untrusted_content

import data.lib

_reason := lib.approval_template(rego.metadata.chain(), {})

# Changes only: reads never escalate, whatever the session read before. The session
# first: an action without one (nearly all) stops at that lookup.
violation contains reason if {
	reads := input.session.untrusted_reads
	count(reads) > 0
	input.effect in {"write", "delete"}
	msg := sprintf("this session read content the cluster's users or workloads control (%s); %s", [
		concat("; ", [_read_text(read) | some read in array.slice(reads, count(reads) - 3, count(reads))]),
		"instructions planted there must not steer a change without a human",
	])
	reason := object.union(_reason, {"message": msg})
}

_read_text(read) := sprintf("%s from %s at %s", [read.content, _what(read), read.at])

_what(read) := sprintf("%s %s", [read.tool, concat("/", [part |
	some field in ["cluster", "namespace", "name"]
	part := read.target[field]
	is_string(part)
])])

# METADATA
# description: |
#   What this read returns that the cluster's users or workloads control, by the
#   sources in data: the gateway remembers it for the session when the read runs.
untrusted contains source.content if {
	input.effect == "read"
	some source in data.params.rules.untrusted_content.sources
	input.tool == source.tool
	_kind_matches(object.get(source, "kinds", null))
}

_kind_matches(null)

_kind_matches(kinds) if lib.kind in {lower(kind) | some kind in kinds}
