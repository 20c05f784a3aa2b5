package rules.no_host_path_test

import data.lib_test
import data.rules.no_host_path

_spec(volumes) := object.union(lib_test.pod_spec([lib_test.good_container("app")]), {"volumes": volumes})

test_allow_empty_dir_and_config_map_volumes if {
	volumes := [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}]
	count(no_host_path.violation) == 0 with input as lib_test.apply(lib_test.deployment("web", _spec(volumes)))
}

test_deny_host_path_volume if {
	volumes := [{"name": "root", "hostPath": {"path": "/"}}]
	inp := lib_test.apply(lib_test.deployment("web", _spec(volumes)))
	lib_test.codes(no_host_path.violation) == {"K8S-HOST-002"} with input as inp
}

test_deny_host_path_in_cronjob_template if {
	volumes := [{"name": "sock", "hostPath": {"path": "/var/run/containerd/containerd.sock"}}]
	count(no_host_path.violation) == 1 with input as lib_test.apply(lib_test.cronjob("nightly", _spec(volumes)))
}

test_deny_unnamed_host_path_volume if {
	inp := lib_test.apply(lib_test.pod("web", _spec([{"hostPath": {"path": "/etc"}}])))
	some v in no_host_path.violation with input as inp
	contains(v.message, "<unnamed>")
}

test_deny_host_path_volume_of_the_wrong_type if {
	# Any hostPath value counts, text included, and volumes given as an object are read
	# all the same.
	spec := {"containers": [lib_test.good_container("app")], "volumes": [{"name": "root", "hostPath": "/"}]}
	count(no_host_path.violation) == 1 with input as lib_test.apply(lib_test.pod("web", spec))
	keyed := {"containers": [lib_test.good_container("app")], "volumes": {"root": {"hostPath": {"path": "/"}}}}
	count(no_host_path.violation) == 1 with input as lib_test.apply(lib_test.pod("web", keyed))
}
