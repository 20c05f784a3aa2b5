package rules.untrusted_content_test

import data.lib_test
import data.rules.untrusted_content

_read(tool, at) := {
	"tool": tool,
	"content": "pod logs",
	"target": {"cluster": "sandbox", "namespace": "dev", "kind": "Pod", "name": "worker"},
	"at": at,
}

_session(reads) := {"id": "3f1d0c2e-0000-4000-8000-000000000001", "untrusted_reads": reads}

_write := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([lib_test.good_container("app")])))

test_allow_write_in_a_session_without_untrusted_reads if {
	count(untrusted_content.violation) == 0 with input as _write
	count(untrusted_content.violation) == 0 with input as object.union(_write, {"session": _session([])})
}

test_deny_write_after_reading_pod_logs_needs_approval if {
	inp := object.union(_write, {"session": _session([_read("k8s_logs", "2026-01-01T11:58:00Z")])})
	reasons := untrusted_content.violation with input as inp
	{r.message | some r in reasons} == {concat("", [
		"this session read content the cluster's users or workloads control ",
		"(pod logs from k8s_logs sandbox/dev/worker at 2026-01-01T11:58:00Z); ",
		"instructions planted there must not steer a change without a human",
	])}
	every r in reasons {
		r.code == "GW-TAINT-001"
		r.effect == "needs_approval"
		r.approval.min_approvals == 1
	}
}

test_deny_delete_after_untrusted_read if {
	session := _session([_read("k8s_events", "2026-01-01T11:58:00Z")])
	inp := object.union(lib_test.k8s_delete("Deployment", "web"), {"session": session})
	count(untrusted_content.violation) == 1 with input as inp
}

test_deny_message_names_the_latest_three_reads if {
	reads := [_read(sprintf("tool_%d", [i]), "2026-01-01T11:58:00Z") | some i in numbers.range(1, 5)]
	some r in untrusted_content.violation with input as object.union(_write, {"session": _session(reads)})
	not contains(r.message, "tool_2 ")
	contains(r.message, "tool_3 ")
	contains(r.message, "tool_5 ")
}

test_allow_reads_are_never_escalated if {
	session := _session([_read("k8s_logs", "2026-01-01T11:58:00Z")])
	read := object.union(lib_test.k8s_read("k8s_get", "get", "Pod"), {"session": session})
	count(untrusted_content.violation) == 0 with input as read
}

test_allow_untrusted_names_what_a_read_returns if {
	untrusted_content.untrusted == {"pod logs"} with input as lib_test.k8s_read("k8s_logs", "logs", "Pod")
	untrusted_content.untrusted == {"events"} with input as lib_test.k8s_read("k8s_events", "events", "Pod")
	untrusted_content.untrusted == set() with input as lib_test.k8s_read("k8s_get", "get", "Pod")
}

test_allow_sources_limited_to_kinds if {
	sources := [{"tool": "k8s_get", "content": "ConfigMap data", "kinds": ["ConfigMap"]}]
	untrusted_content.untrusted == {"ConfigMap data"} with input as lib_test.k8s_read("k8s_get", "get", "configmap")
		with data.params.rules.untrusted_content.sources as sources
	untrusted_content.untrusted == set() with input as lib_test.k8s_read("k8s_get", "get", "Pod")
		with data.params.rules.untrusted_content.sources as sources
}

test_allow_writes_never_mark_a_session if {
	untrusted_content.untrusted == set() with input as object.union(_write, {"tool": "k8s_logs"})
}
