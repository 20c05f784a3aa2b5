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
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "restricted/Running as Non-root user"
#       tests:
#         - test_deny_run_as_user_zero
#         - test_deny_pod_level_root_user
#         - test_deny_root_init_container_in_cronjob
#         - test_deny_run_as_user_of_the_wrong_type
package rules.no_root

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	entry.run_as_user == 0
	msg := sprintf("%s '%s' runs as user 0 (root)", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some entry in lib.write_containers
	entry.run_as_non_root == false
	msg := sprintf("%s '%s' sets runAsNonRoot: false", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}

# The settings are compared inline (the entries carry them as they take effect); only
# a container that proves nothing reaches the helper.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	data.params.rules.no_root.require_explicit_non_root == true
	some entry in lib.write_containers
	not entry.run_as_non_root in {true, false}
	entry.run_as_user != 0
	not _non_root_user(entry.run_as_user)
	msg := sprintf("%s '%s' sets neither runAsNonRoot: true nor a non-zero runAsUser", [entry.field, entry.name])
	reason := object.union(_reason, {"message": msg})
}

_non_root_user(user) if {
	is_number(user)
	user > 0
}
