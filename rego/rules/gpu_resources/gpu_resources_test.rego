package rules.gpu_resources_test

import data.lib_test
import data.rules.gpu_resources

_with_resources(resources) := lib_test.apply(lib_test.deployment("train", lib_test.pod_spec([container]))) if {
	container := object.union(lib_test.good_container("app"), {"resources": resources})
}

test_allow_no_gpu if {
	count(gpu_resources.violation) == 0 with input as _with_resources({})
}

test_allow_zero_gpu if {
	count(gpu_resources.violation) == 0 with input as _with_resources({"limits": {"nvidia.com/gpu": "0"}})
}

test_deny_gpu_request_needs_approval if {
	some v in gpu_resources.violation with input as _with_resources({"requests": {"nvidia.com/gpu": 1}})
	v.code == "GPU-001"
	v.effect == "needs_approval"
}

test_deny_gpu_in_limits_only if {
	count(gpu_resources.violation) == 1 with input as _with_resources({"limits": {"amd.com/gpu": "2"}})
}

test_deny_unparseable_gpu_quantity if {
	count(gpu_resources.violation) == 1 with input as _with_resources({"limits": {"nvidia.com/gpu": "lots"}})
}

test_deny_gpu_in_init_container_of_cronjob if {
	container := object.union(lib_test.good_container("warm"), {"resources": {"limits": {"nvidia.com/gpu": 1}}})
	spec := {"initContainers": [container], "containers": [lib_test.good_container("app")]}
	count(gpu_resources.violation) == 1 with input as lib_test.apply(lib_test.cronjob("nightly", spec))
}

test_allow_palette_cluster_without_gpu if {
	inp := lib_test.palette_create("edge", [lib_test.pool("control-plane", 1, "m5.large")])
	count(gpu_resources.violation) == 0 with input as inp
}

test_deny_palette_gpu_instance_type if {
	pools := [lib_test.pool("control-plane", 1, "m5.large"), lib_test.pool("gpu", 2, "p4d.24xlarge")]
	count(gpu_resources.violation) == 1 with input as lib_test.palette_create("ml", pools)
}

test_deny_palette_gpu_instance_type_any_case if {
	pools := [lib_test.pool("gpu", 1, "Standard_NC6s_v3")]
	count(gpu_resources.violation) == 1 with input as lib_test.palette_create("ml", pools)
}
