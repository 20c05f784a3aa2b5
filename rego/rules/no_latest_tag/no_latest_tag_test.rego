package rules.no_latest_tag_test

import data.lib_test
import data.rules.no_latest_tag

_input(image) := lib_test.apply(lib_test.deployment("web", lib_test.pod_spec([container]))) if {
	container := object.union(lib_test.good_container("app"), {"image": image})
}

_digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

test_allow_version_tag if {
	count(no_latest_tag.violation) == 0 with input as _input("registry.example.com/team/app:1.2.3")
}

test_allow_digest_without_tag if {
	count(no_latest_tag.violation) == 0 with input as _input(concat("@", ["registry.example.com/team/app", _digest]))
}

test_allow_latest_pinned_by_digest if {
	inp := _input(concat("@", ["registry.example.com/team/app:latest", _digest]))
	count(no_latest_tag.violation) == 0 with input as inp
}

test_deny_latest_tag if {
	inp := _input("registry.example.com/team/app:latest")
	lib_test.codes(no_latest_tag.violation) == {"K8S-IMG-002"} with input as inp
}

test_deny_latest_tag_any_case if {
	count(no_latest_tag.violation) == 1 with input as _input("registry.example.com/team/app:Latest")
}

test_deny_untagged_image if {
	count(no_latest_tag.violation) == 1 with input as _input("registry.example.com/team/app")
}

test_deny_untagged_image_on_registry_with_port if {
	count(no_latest_tag.violation) == 1 with input as _input("registry.example.com:5000/app")
}

test_deny_latest_in_ephemeral_container if {
	spec := {
		"containers": [lib_test.good_container("app")],
		"ephemeralContainers": [object.union(lib_test.good_container("debug"), {"image": "busybox:latest"})],
	}
	count(no_latest_tag.violation) == 1 with input as lib_test.apply(lib_test.pod("web", spec))
}
