# METADATA
# title: Containers must not run as root
# description: >-
#   runAsUser 0 or runAsNonRoot false runs the container as root. The pod-level
#   securityContext is the default and a container's own setting overrides it. With
#   require_explicit_non_root (data), a container must also prove it is not root:
#   runAsNonRoot true or a non-zero runAsUser, since an image's default user is often root.
# custom:
#   code: K8S-ROOT-001
#   severity: high
#   mode: deny
package rules.no_root

import data.lib

violation contains reason if {
	some entry in lib.write_containers
	_root_user(entry)
	msg := sprintf("%s '%s' runs as user 0 (root)", [entry.field, entry.name])
	reason := lib.reason(rego.metadata.chain(), msg)
}

violation contains reason if {
	some entry in lib.write_containers
	_root_allowed(entry)
	msg := sprintf("%s '%s' sets runAsNonRoot: false", [entry.field, entry.name])
	reason := lib.reason(rego.metadata.chain(), msg)
}

violation contains reason if {
	data.params.rules.no_root.require_explicit_non_root == true
	some entry in lib.write_containers
	not _proves_non_root(entry)
	not _root_user(entry)
	not _root_allowed(entry)
	msg := sprintf("%s '%s' sets neither runAsNonRoot: true nor a non-zero runAsUser", [entry.field, entry.name])
	reason := lib.reason(rego.metadata.chain(), msg)
}

# Helpers, not inline comparisons: `not f(x) == 0` would fail when f(x) is undefined.
_root_user(entry) if lib.effective_security(entry, "runAsUser") == 0

_root_allowed(entry) if lib.effective_security(entry, "runAsNonRoot") == false

_proves_non_root(entry) if lib.effective_security(entry, "runAsNonRoot") == true

_proves_non_root(entry) if {
	user := lib.effective_security(entry, "runAsUser")
	is_number(user)
	user > 0
}
