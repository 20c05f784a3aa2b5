package lib_test

import data.lib

test_allow_kind_from_object_when_target_has_none if {
	lib.kind == "deployment" with input as {"target": {}, "object": {"kind": "Deployment"}}
	lib.kind == "secret" with input as {"target": {"kind": "Secret"}, "object": {"kind": "Deployment"}}
}

test_allow_target_name_placeholder if {
	lib.target_name == "<unnamed>" with input as {"target": {}}
	lib.target_name == "web" with input as {"target": {"name": "web"}}
}

test_allow_production_from_target_or_labels if {
	lib.production with input as {"target": {"environment": "Production"}}
	lib.production with input as {"target": {}, "current": {"metadata": {"labels": {"environment": "prod"}}}}
	not lib.production with input as {"target": {"environment": "staging"}}
}

test_allow_glob_matches if {
	lib.matches("*", "anything/at.all")
	lib.matches("team-*", "team-a")
	not lib.matches("team-*", "other")
}

test_allow_unnamed_container_is_still_inspected if {
	obj := {"kind": "Pod", "spec": {"containers": [{"image": "x"}]}}
	names := {c.name | some c in lib.write_containers} with input as _write(obj)
	names == {"<unnamed>"}
}

test_allow_pod_template_kind if {
	obj := {"kind": "PodTemplate", "template": {"spec": {"containers": [{"name": "a"}]}}}
	names := {c.name | some c in lib.write_containers} with input as _write(obj)
	names == {"a"}
}

test_allow_images_parsed_as_image_parses_them if {
	# lib.images inlines lib.image: the two agree on every reference, invalid ones too.
	refs := [
		"nginx", "nginx:1.27", "library/nginx@sha256:0123456789abcdef0123456789abcdef", "ghcr.io/acme/app:v1",
		"Registry.Example.com:5000/team/app:1.2.3", "localhost/app", "index.docker.io/team/app", "bad image", 7,
	]
	containers := [{"name": sprintf("c%d", [i]), "image": ref} | some i, ref in refs]
	images := lib.images with input as _write({"kind": "Pod", "spec": {"containers": containers}})
	images == {ref: parsed | some ref in refs; parsed := lib.image(ref)}
	count(images) == 7
}

_write(obj) := {"backend": "kubernetes", "effect": "write", "object": obj}

test_allow_any_of_matches_where_one_pattern_does if {
	pattern := lib.any_of(["^a", "b$"])
	regex.match(pattern, "abc")
	regex.match(pattern, "xab")
	not regex.match(pattern, "xbc")
}

test_deny_any_of_no_patterns_matches_nothing if {
	pattern := lib.any_of([])
	not regex.match(pattern, "")
	not regex.match(pattern, "anything")
}

test_allow_pod_shape_ignores_resources_only if {
	container := {"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}}
	before := {"kind": "Pod", "spec": {"containers": [container, "malformed"]}}
	after := json.patch(before, [{"op": "replace", "path": "/spec/containers/0/resources/limits/cpu", "value": "2"}])
	lib.pod_shape(before) == lib.pod_shape(after)
	renamed := json.patch(before, [{"op": "replace", "path": "/spec/containers/0/image", "value": "y"}])
	lib.pod_shape(before) != lib.pod_shape(renamed)
}
