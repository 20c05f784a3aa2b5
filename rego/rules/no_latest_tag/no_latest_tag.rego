# METADATA
# title: No latest or untagged images
# description: >-
#   An image without a tag, or with a mutable tag like latest (list in data), can change
#   under a running workload. A digest-pinned image (@sha256:...) is always fine.
# custom:
#   code: K8S-IMG-002
#   severity: medium
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
package rules.no_latest_tag

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# Distinct images first, containers only for an image that fails.
_disallowed contains lower(tag) if some tag in data.params.rules.no_latest_tag.disallowed_tags

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some ref, parsed in lib.images
	parsed.digest == ""
	parsed.tag == ""
	some entry in lib.write_containers
	entry.container.image == ref
	msg := sprintf("%s '%s' uses untagged image '%s'; pin a tag or digest", [entry.field, entry.name, ref])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some ref, parsed in lib.images
	parsed.digest == ""
	lower(parsed.tag) in _disallowed
	some entry in lib.write_containers
	entry.container.image == ref
	msg := sprintf("%s '%s' uses mutable tag '%s'; pin a version or digest", [entry.field, entry.name, parsed.tag])
	reason := object.union(_reason, {"message": msg})
}
