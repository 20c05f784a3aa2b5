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
pod_specs(obj) := {spec |
	some path in _pod_spec_paths
	spec := object.get(obj, path, null)
	is_object(spec)
}

# METADATA
# scope: document
# description: |
#   Every container of an object, init and ephemeral ones included, as
#   {field, name, container, pod_security}; pod_security (the pod's securityContext)
#   lets rules apply pod-level defaults. Entries stay small: sets hash their elements.
containers(obj) := {entry |
	some spec in pod_specs(obj)
	some field in _container_fields
	some container in spec[field]
	entry := {
		"field": field,
		"name": _container_name(container),
		"container": container,
		"pod_security": object.get(spec, "securityContext", {}),
	}
}

# `else`, not a second body negating the first: OPA evaluates every body of a
# function, and the negation would need a helper call of its own.
_container_name(container) := container.name if is_string(container.name)

else := "<unnamed>"

# METADATA
# scope: document
# description: |
#   A security context setting as it takes effect: the container's own value when
#   set, else the pod-level value.
effective_security(entry, key) := value if {
	value := entry.container.securityContext[key]
} else := entry.pod_security[key]

# METADATA
# scope: document
# description: The object's own workload containers when this action writes one.
write_containers := containers(input.object) if k8s_object_write

# METADATA
# scope: document
# description: The live object's containers, for rules that compare before and after.
current_containers := containers(input.current) if {
	k8s_object_write
	is_object(input.current)
}

# Every image reference of the written object, parsed once per decision (several
# rules look at each image); an invalid reference has no entry. A comprehension, not
# an object rule: OPA re-evaluates an object rule's body for every key looked up.
# regal ignore:prefer-set-or-object-rule
images := {ref: parsed |
	some ref in {entry.container.image | some entry in write_containers}
	parsed := image(ref)
}
