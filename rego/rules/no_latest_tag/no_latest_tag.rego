# METADATA
# title: No latest or untagged images
# description: >-
#   An image without a tag, or with a mutable tag like latest (list in data), can change
#   under a running workload. A digest-pinned image (@sha256:...) is always fine.
# custom:
#   code: K8S-IMG-002
#   severity: medium
#   mode: deny
package rules.no_latest_tag

import data.lib

violation contains reason if {
	some entry in lib.write_containers
	parsed := lib.images[entry.container.image]
	parsed.digest == ""
	parsed.tag == ""
	msg := sprintf("%s '%s' uses untagged image '%s'; pin a tag or digest", [
		entry.field,
		entry.name,
		entry.container.image,
	])
	reason := lib.reason(rego.metadata.chain(), msg)
}

violation contains reason if {
	some entry in lib.write_containers
	parsed := lib.images[entry.container.image]
	parsed.digest == ""
	lower(parsed.tag) in {lower(tag) | some tag in data.params.rules.no_latest_tag.disallowed_tags}
	msg := sprintf("%s '%s' uses mutable tag '%s'; pin a version or digest", [entry.field, entry.name, parsed.tag])
	reason := lib.reason(rego.metadata.chain(), msg)
}
