package rules.bounded_logs_test

import data.lib_test
import data.rules.bounded_logs

_logs(args) := object.union(lib_test.k8s_read("k8s_logs", "logs", "Pod"), {"args": args})

test_allow_log_read_carries_line_cap if {
	bounded_logs.max_log_lines == 500 with input as _logs({"name": "web"})
	count(bounded_logs.violation) == 0 with input as _logs({"name": "web", "tail_lines": 100})
}

test_allow_other_reads_have_no_cap if {
	not bounded_logs.max_log_lines with input as lib_test.k8s_read("k8s_get", "get", "Pod")
}

test_deny_more_lines_than_cap_warns if {
	some v in bounded_logs.violation with input as _logs({"tail_lines": 100000})
	v.code == "OPS-LOGS-001"
	v.effect == "warn"
}

test_allow_cap_from_data if {
	bounded_logs.max_log_lines == 50 with input as _logs({}) with data.params.rules.bounded_logs.max_log_lines as 50
}
