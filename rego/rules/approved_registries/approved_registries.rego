# METADATA
# title: Images only from approved registries
# description: >-
#   Every container image must come from a registry or repository prefix listed in
#   data. References are parsed and normalised first (Docker Hub short names become
#   docker.io/library/...), and entries match whole path segments, so a host that
#   merely starts with an approved name (registry.example.com.evil.io) is refused.
#   A reference that cannot be parsed is refused too.
# custom:
#   code: K8S-IMG-001
#   severity: high
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
package rules.approved_registries

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# One anchored alternation of the approved prefixes, built from data: the bundle build
# folds it into a constant, and each distinct image costs one match instead of a
# comparison per entry. Containers are looked at only for an image that fails. No
# entries approve no image.
_approved := lib.any_of([concat("", ["^", lib.regex_literal(lib.approved_prefix(entry))]) |
	some entry in data.params.rules.approved_registries.registries
])

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some ref, parsed in lib.images
	not regex.match(_approved, parsed.location)
	some entry in lib.write_containers
	entry.container.image == ref
	msg := sprintf("%s '%s' uses image '%s' from %s, which is not an approved registry", [
		entry.field,
		entry.name,
		ref,
		parsed.location,
	])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers

	# A missing image as null, which no parsed reference equals: read directly, an
	# undefined image would make the membership test, and with it the check, vanish.
	not object.get(entry.container, "image", null) in _parsed
	msg := sprintf("%s '%s' has no valid image reference", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}

_parsed := object.keys(lib.images)
