package rules.no_bulk_writes_test

import data.lib_test
import data.rules.no_bulk_writes

_delete := lib_test.k8s_delete("Pod", "web-1")

test_allow_named_delete if {
	count(no_bulk_writes.violation) == 0 with input as _delete
}

test_allow_read_by_selector if {
	inp := lib_test.with_field(lib_test.k8s_read("k8s_list", "list", "Pod"), "/target/label_selector", "app=web")
	count(no_bulk_writes.violation) == 0 with input as inp
}

test_deny_delete_by_label_selector if {
	inp := lib_test.with_field(_delete, "/target/label_selector", "app in (web,api)")
	lib_test.codes(no_bulk_writes.violation) == {"OPS-BULK-001"} with input as inp
}

test_deny_write_across_all_namespaces if {
	inp := lib_test.with_field(_delete, "/target/all_namespaces", true)
	count(no_bulk_writes.violation) == 1 with input as inp
}

test_deny_delete_without_name if {
	inp := lib_test.with_field(_delete, "/target/name", null)
	count(no_bulk_writes.violation) == 1 with input as inp
}

test_deny_blank_name if {
	inp := lib_test.with_field(_delete, "/target/name", "  ")
	count(no_bulk_writes.violation) == 1 with input as inp
}

test_allow_blank_selector if {
	inp := lib_test.with_field(_delete, "/target/label_selector", " ")
	count(no_bulk_writes.violation) == 0 with input as inp
}
