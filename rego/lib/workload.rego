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

# Where a pod's annotations live: a Pod's own, or its template's. The object's own
# metadata is read whatever its kind: a Deployment's annotations are judged as if they
# were its pods' (a finding there would at worst be a false one, never a miss).
_pod_annotation_paths := [
	["metadata", "annotations"],
	["template", "metadata", "annotations"],
	["spec", "template", "metadata", "annotations"],
	["spec", "jobTemplate", "spec", "template", "metadata", "annotations"],
]

_container_fields := ["containers", "initContainers", "ephemeralContainers"]

# METADATA
# scope: document
# description: |
#   Every pod spec inside an object, wherever its kind keeps it: an object at one of
#   the paths above, whatever the kind (so a custom resource with a pod template is
#   inspected too), that has a container list (containers, initContainers or
#   ephemeralContainers, of any type: known_action refuses one that is not a list).
pod_specs(obj) := [spec |
	some path in _pod_spec_paths
	spec := object.get(obj, path, null)
	is_object(spec)
	count(object.keys(spec) & _container_field_set) > 0
]

# METADATA
# scope: document
# description: |
#   The annotations of the written object's pods (see _pod_annotation_paths), as they
#   are: one object each, or whatever else stands there.
write_pod_annotations := [annotations |
	k8s_object_write
	some path in _pod_annotation_paths
	annotations := object.get(input.object, path, null)
	annotations != null
]

# METADATA
# scope: document
# description: |
#   Every container of an object, init and ephemeral ones included, as {field, name,
#   container, pod, run_as_user, run_as_non_root}: the pod spec it is in, and two
#   security settings as they take effect, the container's own value when set, else
#   the pod's. One comprehension and builtins only: every workload rule iterates these
#   entries, and a helper call costs ten times an expression in OPA's evaluator.
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
		"pod": spec,
		"run_as_user": object.get(spec, [field, i, "securityContext", "runAsUser"], pod_user),
		"run_as_non_root": object.get(spec, [field, i, "securityContext", "runAsNonRoot"], pod_non_root),
	}
]

# What in the written object's pod specs has the wrong shape, as messages: a container,
# volume or port list that is not a list of objects, a securityContext (pod or container)
# that is not an object. The apiserver refuses such an object, but a custom resource
# without a schema may carry one, and the rules that read these fields would find
# nothing to judge in it and let it pass: known_action refuses it first. Fields below
# these (a seLinuxOptions that is text, a hostPort that is not a number) are judged by
# the rule that reads them. Few comprehensions, each over a table of fields: every
# written workload pays for this check.
# regal ignore:prefer-set-or-object-rule
malformed_pod_fields := (((({sprintf("%s in the object's pod spec must be %s", [field, _shape_words[want]]) |
	some spec in write_pod_specs
	some field, want in _pod_shapes
	value := spec[field]
	type_name(value) != want
	value != null
} | {sprintf("%s in the object's pod spec must be a list of objects", [entry.field]) |
	some entry in write_containers
	not is_object(entry.container)
}) | {"volumes in the object's pod spec must be a list of objects" |
	some spec in write_pod_specs
	some item in spec.volumes
	not is_object(item)
}) | {sprintf("%s of %s '%s' must be %s", [name, entry.field, entry.name, _shape_words[want]]) |
	# The settings the container rules compare with true, false or 0, of another type
	# (text where a boolean belongs): they would compare unequal and pass unseen. A
	# hardened workload (lib.hardened) has none.
	soft
	some entry in write_containers
	some name, want in _setting_types
	value := entry.container.securityContext[name]
	type_name(value) != want
	value != null
}) | {sprintf("%s of the object's pod securityContext must be %s", [name, _shape_words[want]]) |
	soft
	some spec in write_pod_specs
	some name, want in _setting_types
	value := spec.securityContext[name]
	type_name(value) != want
	value != null
}) | {sprintf("%s of %s '%s' must be %s", [field, entry.field, entry.name, _shape_words[want]]) |
	# Per container only when a distinct profile is misshapen (almost never).
	count(_misshapen_profiles) > 0
	some entry in write_containers
	some field, want in _container_shapes
	value := object.get(entry.container, field, null)
	not _shaped(value, want)
}

_misshapen_profiles contains profile if {
	soft
	some profile in container_profiles
	not is_object(object.get(profile, "securityContext", {}))
}

_misshapen_profiles contains profile if {
	some profile in container_profiles
	not _shaped(object.get(profile, "ports", []), "array")
}

_shaped(null, _)

_shaped(value, "object") if is_object(value)

_shaped(value, "array") if {
	is_array(value)
	every item in value {
		is_object(item)
	}
}

# Host namespaces included: lib.hardened says nothing about them.
_pod_shapes := {
	"containers": "array",
	"initContainers": "array",
	"ephemeralContainers": "array",
	"securityContext": "object",
	"volumes": "array",
	"hostNetwork": "boolean",
	"hostPID": "boolean",
	"hostIPC": "boolean",
}

_container_shapes := {"securityContext": "object", "ports": "array"}

_shape_words := {"array": "a list of objects", "object": "an object", "boolean": "true or false", "number": "a number"}

_setting_types := {
	"privileged": "boolean",
	"allowPrivilegeEscalation": "boolean",
	"runAsNonRoot": "boolean",
	"runAsUser": "number",
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

# METADATA
# scope: document
# description: The pod specs of the object this action writes (undefined for other actions).
write_pod_specs := pod_specs(input.object) if k8s_object_write

# METADATA
# scope: document
# description: |
#   The distinct security profiles of the written containers: each container's
#   securityContext, ports, probes and lifecycle handlers, nothing else. Workloads repeat
#   one hardened context and one port layout on every container, so a check that holds
#   for each profile holds for every container, at a fraction of the cost of checking
#   each container: most workloads have one or two. A container that is not an object
#   has none (known_action refuses it).
container_profiles contains profile if {
	some entry in write_containers
	profile := object.filter(entry.container, _profile_fields)
}

_profile_fields := ["securityContext", "ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle"]

# METADATA
# scope: document
# description: |
#   Every container of the written object runs with a hardened securityContext, and so
#   does every pod: the form the Pod Security Standards' restricted profile asks for,
#   and nothing more. Each distinct container context sets only allowPrivilegeEscalation
#   false, capabilities exactly {"drop": ["ALL"]}, and optionally runAsNonRoot true, a
#   non-zero runAsUser, runAsGroup, readOnlyRootFilesystem and a RuntimeDefault or
#   Localhost seccompProfile; each pod context sets runAsNonRoot true and such a seccomp
#   profile, and optionally a non-zero runAsUser and the group settings. The fast path
#   of every container security rule: such a workload has no privileged or escalating
#   container, no added capability, no root user, no judged setting and no malformed
#   context, so those rules stop at this one fact instead of each looking at every
#   container (a test holds each rule's findings equal with the fact forced off).
hardened if {
	count(write_containers) > 0
	count([1 |
		some profile in container_profiles
		context := object.get(profile, "securityContext", {})
		count(object.keys(context) - _hardened_context_fields) == 0
		context.allowPrivilegeEscalation == false
		context.capabilities == {"drop": ["ALL"]}
		object.get(context, "runAsNonRoot", true) == true
		user := object.get(context, "runAsUser", 1)
		is_number(user)
		user > 0
		seccomp := object.get(context, "seccompProfile", {"type": "RuntimeDefault"})
		seccomp.type in {"RuntimeDefault", "Localhost"}
	]) == count(container_profiles)
	count([1 |
		some spec in write_pod_specs
		context := spec.securityContext
		count(object.keys(context) - _hardened_pod_fields) == 0
		context.runAsNonRoot == true
		context.seccompProfile.type in {"RuntimeDefault", "Localhost"}
		user := object.get(context, "runAsUser", 1)
		is_number(user)
		user > 0
	]) == count(write_pod_specs)
}

# METADATA
# scope: document
# description: |
#   Not hardened (see hardened), as a fact of its own: rules gate their slow paths on it
#   with a lookup, where `not hardened` would cost a negation each.
default soft := true

soft := false if hardened

_hardened_context_fields := {
	"allowPrivilegeEscalation",
	"capabilities",
	"runAsNonRoot",
	"runAsUser",
	"runAsGroup",
	"readOnlyRootFilesystem",
	"seccompProfile",
}

_hardened_pod_fields := {
	"runAsNonRoot",
	"runAsUser",
	"runAsGroup",
	"fsGroup",
	"fsGroupChangePolicy",
	"supplementalGroups",
	"supplementalGroupsPolicy",
	"seccompProfile",
}

# The securityContext settings that Pod Security Standards controls judge one by one,
# wherever they are set (sysctls only on the pod, procMount only on containers).
_judged_pod_settings := ["seLinuxOptions", "appArmorProfile", "seccompProfile", "windowsOptions", "sysctls"]

_judged_container_settings := ["seLinuxOptions", "appArmorProfile", "seccompProfile", "windowsOptions", "procMount"]

# METADATA
# scope: document
# description: |
#   Every such securityContext setting of the written object as [setting, where, value],
#   where is "the pod" or "<field> '<name>'": one pass over the contexts for every rule
#   that judges them, which then looks at a handful of entries (a compliant pod sets
#   seccompProfile or nothing) instead of every container again.
security_settings contains [name, "the pod", value] if {
	some spec in write_pod_specs
	some name in _judged_pod_settings
	value := spec.securityContext[name]
}

security_settings contains [name, sprintf("%s '%s'", [entry.field, entry.name]), value] if {
	some entry in write_containers
	some name in _judged_container_settings
	value := entry.container.securityContext[name]
}

# METADATA
# scope: document
# description: |
#   The object's pod specs with every container's resources
#   removed: equal for two objects when a write changes nothing in the pods but
#   replicas, template annotations or container resources. The decision compares the
#   two images with it before it counts any finding as pre-existing.
pod_shape(obj) := [_without_resources(spec) | some spec in pod_specs(obj)]

_container_field_set := {field | some field in _container_fields}

_without_resources(spec) := object.union(spec, {field: [_no_resources(container) | some container in list] |
	some field in _container_fields
	list := spec[field]
	is_array(list)
})

_no_resources(container) := object.remove(container, ["resources"]) if is_object(container)

else := container
