package lib

# Where pod specs live in workload objects: Pod, PodTemplate, the controllers with a
# template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ...) and CronJob.
# Every path is tried whatever the kind, so a custom resource with a pod template is
# inspected too.
_pod_spec_paths := [
	["spec"],
	["template", "spec"],
	["spec", "template", "spec"],
	["spec", "jobTemplate", "spec", "template", "spec"],
]

_container_fields := ["containers", "initContainers", "ephemeralContainers"]

# METADATA
# scope: document
# description: Every pod spec inside an object, wherever its kind keeps it.
pod_specs(obj) := [spec |
	some path in _pod_spec_paths
	spec := object.get(obj, path, null)
	is_object(spec)
]

# METADATA
# scope: document
# description: |
#   Every container of an object, init and ephemeral ones included, as
#   {field, name, container, run_as_user, run_as_non_root}: the two security settings
#   as they take effect, the container's own value when set, else the pod's.
#   One comprehension and builtins only: every workload rule iterates these entries,
#   and a helper call costs ten times an expression in OPA's evaluator.
containers(obj) := [entry |
	some spec in pod_specs(obj)
	pod_user := object.get(spec, ["securityContext", "runAsUser"], null)
	pod_non_root := object.get(spec, ["securityContext", "runAsNonRoot"], null)
	some field in _container_fields
	some i, container in spec[field]
	entry := {
		"field": field,
		"name": object.get(spec, [field, i, "name"], "<unnamed>"),
		"container": container,
		"run_as_user": object.get(spec, [field, i, "securityContext", "runAsUser"], pod_user),
		"run_as_non_root": object.get(spec, [field, i, "securityContext", "runAsNonRoot"], pod_non_root),
	}
]

# The container lists of the written object that are not lists of objects, by field.
# The apiserver refuses such an object, but the workload rules read containers as
# objects and would find nothing to judge in it, so known_action refuses it first.
# Comprehensions, not rule bodies, which the optimizer would unroll once per field.
# regal ignore:prefer-set-or-object-rule
malformed_container_lists := {field |
	k8s_object_write
	some spec in pod_specs(input.object)
	some field in _container_fields
	list := spec[field]
	list != null
	not is_array(list)
} | {entry.field |
	some entry in write_containers
	not is_object(entry.container)
}

# METADATA
# scope: document
# description: The object's own workload containers when this action writes one.
write_containers := containers(input.object) if k8s_object_write

# The live object's resources per container, keyed by [field, name], for rules that
# compare before and after; empty without a live object.
# regal ignore:prefer-set-or-object-rule
current_resources := {[field, object.get(container, "name", "<unnamed>")]: object.get(container, "resources", null) |
	k8s_object_write
	some spec in pod_specs(input.current)
	some field in _container_fields
	some container in spec[field]
}

# Every image reference of the written object, parsed once per decision (several
# rules look at each image); an invalid reference has no entry. A comprehension, not
# an object rule: OPA re-evaluates an object rule's body for every key looked up.
# regal ignore:prefer-set-or-object-rule
images := {entry.container.image: parsed |
	some entry in write_containers
	parsed := image(entry.container.image)
}
