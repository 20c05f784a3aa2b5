package rules.critical_workloads_test

import data.lib_test
import data.rules.critical_workloads

_write(name) := lib_test.apply(lib_test.deployment(name, lib_test.pod_spec([lib_test.good_container("app")])))

test_allow_ordinary_name if {
	count(critical_workloads.violation) == 0 with input as _write("web")
}

test_allow_reading_critical_workload if {
	inp := lib_test.with_field(lib_test.k8s_read("k8s_get", "get", "StatefulSet"), "/target/name", "postgres")
	count(critical_workloads.violation) == 0 with input as inp
}

test_deny_database_write_needs_approval if {
	some v in critical_workloads.violation with input as _write("orders-postgres")
	v.code == "OPS-CRIT-001"
	v.effect == "needs_approval"
}

test_deny_operator_name_any_case if {
	count(critical_workloads.violation) == 1 with input as _write("Cert-Manager-Operator")
}

test_deny_delete_of_redis if {
	count(critical_workloads.violation) == 1 with input as lib_test.k8s_delete("StatefulSet", "redis")
}

test_deny_object_name_differs_from_target if {
	inp := lib_test.with_field(_write("web"), "/object/metadata/name", "etcd-main")
	count(critical_workloads.violation) == 1 with input as inp
}

# The gate matches what contains() on lower() matches, for letters whose case folds
# differently from their lower case too.
test_deny_name_with_dotted_capital_i if {
	inp := lib_test.with_field(_write("app"), "/target/name", "MARİADB-main")
	"OPS-CRIT-001" in lib_test.codes(critical_workloads.violation) with input as inp
}
