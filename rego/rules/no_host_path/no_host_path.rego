# METADATA
# title: No hostPath volumes
# description: >-
#   A hostPath volume mounts the node's filesystem into the pod: a way to read other
#   pods' data, the kubelet's credentials or the container runtime socket.
# custom:
#   code: K8S-HOST-002
#   severity: high
#   mode: deny
#   reached_by: [k8s_apply, k8s_scale, k8s_restart, k8s_set_resources, gateway_rollback]
#   pss:
#     - control: "baseline/HostPath Volumes"
#       tests:
#         - test_deny_host_path_volume
#         - test_deny_host_path_in_cronjob_template
#         - test_deny_host_path_volume_of_the_wrong_type
package rules.no_host_path

import data.lib

_reason := lib.reason_template(rego.metadata.chain())

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.k8s_object_write
	some spec in lib.write_pod_specs
	some volume in spec.volumes
	"hostPath" in object.keys(volume)
	msg := sprintf("volume '%s' is a hostPath volume", [object.get(volume, "name", "<unnamed>")])
	reason := object.union(_reason, {"message": msg})
}
