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
package rules.approved_registries

import data.lib

# The reason's fixed part, from this package's METADATA and data: it does not depend on
# the input, so the optimizing bundle build evaluates it once, and a reason costs one union.
_reason := lib.reason_template(rego.metadata.chain())

# Each approved entry once per decision, and each distinct image once: containers
# are looked at only for an image that fails.
_prefixes := [lib.approved_prefix(entry) | some entry in data.params.rules.approved_registries.registries]

_approved contains ref if {
	some ref, parsed in lib.images
	some prefix in _prefixes
	startswith(parsed.location, prefix)
}

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some ref, parsed in lib.images
	not ref in _approved
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
	not _valid(entry.container)
	msg := sprintf("%s '%s' has no valid image reference", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}

# A helper: in `not lib.images[c.image]` a missing image would make the check vanish.
_valid(container) if lib.images[container.image]
