package rules.approved_registries_test

import data.lib_test
import data.rules.approved_registries

_input(image) := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([container]))) if {
	container := object.union(lib_test.good_container("app"), {"image": image})
}

test_allow_approved_registry if {
	count(approved_registries.violation) == 0 with input as _input("registry.example.com/team/app:1.2.3")
}

test_allow_docker_hub_official_image if {
	count(approved_registries.violation) == 0 with input as _input("nginx:1.27")
}

test_allow_digest_pinned_image if {
	image := "registry.k8s.io/pause@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	count(approved_registries.violation) == 0 with input as _input(image)
}

test_deny_unapproved_registry if {
	lib_test.codes(approved_registries.violation) == {"K8S-IMG-001"} with input as _input("quay.io/evil/app:1")
}

test_deny_host_that_starts_with_approved_name if {
	count(approved_registries.violation) == 1 with input as _input("registry.example.com.evil.io/x:1")
}

test_deny_approved_name_as_path_on_other_host if {
	count(approved_registries.violation) == 1 with input as _input("evil.io/registry.example.com/app:1")
}

test_deny_approved_host_on_other_port if {
	count(approved_registries.violation) == 1 with input as _input("registry.example.com:5000/app:1")
}

test_deny_docker_hub_user_image if {
	count(approved_registries.violation) == 1 with input as _input("bitnami/redis:7.2")
}

test_deny_invalid_reference if {
	some v in approved_registries.violation with input as _input("registry.example.com/../app:1")
	contains(v.message, "no valid image reference")
}

test_deny_missing_image_in_init_container if {
	spec := {"initContainers": [object.remove(lib_test.good_container("init"), ["image"])]}
	count(approved_registries.violation) == 1 with input as lib_test.apply(lib_test.pod("web", spec))
}

test_deny_unapproved_image_in_cronjob_template if {
	spec := lib_test.pod_spec([object.union(lib_test.good_container("job"), {"image": "ghcr.io/evil/job:1"})])
	count(approved_registries.violation) == 1 with input as lib_test.apply(lib_test.cronjob("nightly", spec))
}

test_deny_every_image_when_no_registry_is_approved if {
	inp := _input("registry.example.com/team/app:1.2.3")
	lib_test.codes(approved_registries.violation) == {"K8S-IMG-001"} with input as inp
		with data.params.rules.approved_registries.registries as []
}
