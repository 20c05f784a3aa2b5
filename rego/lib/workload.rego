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
# description: |
#   Every object at one of the paths above, whatever the kind, so a custom resource with
#   a pod template is inspected too. A controller's own spec (a Deployment's) is one of
#   them: pod_shape and write_pod_specs keep only those with a container list. The hot
#   rules (write_pod_specs, current_resources) walk the paths inline: a call costs more.
pod_specs(obj) := [spec |
	some path in _pod_spec_paths
	spec := object.get(obj, path, null)
	is_object(spec)
]

# METADATA
# scope: document
# description: |
#   The annotations of the written object's pods, as they are: one object each, or
#   whatever else stands there (null included). A Pod's own or its template's; the
#   object's own metadata is read whatever its kind, so a Deployment's annotations are
#   judged as if they were its pods' (a finding there would at worst be a false one,
#   never a miss). One body per place, each a plain reference: cheaper than a loop over
#   paths. Its rules are all Kubernetes write rules; for any other action it is empty.
write_pod_annotations contains input.object.metadata.annotations

write_pod_annotations contains input.object.template.metadata.annotations

write_pod_annotations contains input.object.spec.template.metadata.annotations

write_pod_annotations contains input.object.spec.jobTemplate.spec.template.metadata.annotations

# What in the written object's pod specs has the wrong shape, as messages: a container
# list that is not a list of objects, a securityContext (pod or container) that is not an
# object, a setting the container rules compare with true, false or 0 of another type.
# The apiserver refuses such an object, but a custom resource without a schema may carry
# one, and the rules that read these fields would find nothing to judge in it and let it
# pass: known_action refuses it first. Fields below these (a seLinuxOptions that is text,
# a hostPort that is not a number, a hostNetwork that is not a boolean) are judged by the
# rule that reads them. Volumes are not checked here: the volume rules read a volume
# list given as an object too, and a volume that is not an object has no type and mounts
# nothing. Few comprehensions: every written workload pays for this check, and a
# hardened one (lib.hardened) only for the container lists.
# regal ignore:prefer-set-or-object-rule
malformed_pod_fields := ({sprintf("%s in the object's pod spec must be a list of objects", [field]) |
	some spec in write_pod_specs
	some field in _container_fields
	value := spec[field]
	type_name(value) != "array"
	value != null
} | {sprintf("%s in the object's pod spec must be a list of objects", [entry.field]) |
	some entry in write_containers
	type_name(entry.container) != "object"
}) | _soft_malformed_fields

# The contexts and settings, only for a workload that is not hardened: a hardened one
# has object contexts and settings of the right types.
default _soft_malformed_fields := set()

# regal ignore:prefer-set-or-object-rule
_soft_malformed_fields := (({sprintf("securityContext of %s '%s' must be an object", [entry.field, entry.name]) |
	some entry in write_containers
	context := entry.container.securityContext
	not type_name(context) in {"object", "null"}
} | {"securityContext in the object's pod spec must be an object" |
	some spec in write_pod_specs
	context := spec.securityContext
	not type_name(context) in {"object", "null"}
}) | {sprintf("%s of %s '%s' must be %s", [name, entry.field, entry.name, _shape_words[want]]) |
	some entry in write_containers
	some name, want in _setting_types
	value := entry.container.securityContext[name]
	type_name(value) != want
	value != null
}) | {sprintf("%s of the object's pod securityContext must be %s", [name, _shape_words[want]]) |
	some spec in write_pod_specs
	some name, want in _setting_types
	value := spec.securityContext[name]
	type_name(value) != want
	value != null
} if {
	soft
}

_shape_words := {"boolean": "true or false", "number": "a number"}

_setting_types := {
	"privileged": "boolean",
	"allowPrivilegeEscalation": "boolean",
	"runAsNonRoot": "boolean",
	"runAsUser": "number",
}

# METADATA
# scope: document
# description: |
#   Every container of the written object's pod specs (write_pod_specs), init and
#   ephemeral ones included, as {field, name, container, pod, run_as_user,
#   run_as_non_root}: the pod spec it is in, and two security settings as they take
#   effect, the container's own value when set, else the pod's. One comprehension and
#   builtins only: every workload rule iterates these entries, and a helper call costs
#   ten times an expression in OPA's evaluator.
write_containers := [entry |
	some spec in write_pod_specs
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
] if {
	k8s_object_write
}

# The live object's resources per container, keyed by [field, name], for rules that
# compare before and after; empty without a live object.
# regal ignore:prefer-set-or-object-rule
current_resources := {[field, object.get(container, "name", "<unnamed>")]: object.get(container, "resources", null) |
	k8s_object_write
	some path in _pod_spec_paths
	spec := object.get(input.current, path, null)
	some field in _container_fields
	some container in spec[field]
}

# Every image reference of the written object, parsed once per decision (several
# rules look at each image); an invalid reference has no entry. A comprehension, not
# an object rule: OPA re-evaluates an object rule's body for every key looked up. The
# body of image(ref), inline: a call per container costs more than the parse itself (a
# test holds the two equal).
# regal ignore:prefer-set-or-object-rule
images := {entry.container.image: {
	"registry": registry,
	"repository": repository,
	"tag": tag,
	"digest": digest,
	"location": concat("/", [registry, repository]),
} |
	some entry in write_containers
	is_string(entry.container.image)
	[_, host_text, path, tag, digest] := regex.find_all_string_submatch_n(_image_pattern, entry.container.image, 1)[0]
	host := lower(host_text)
	registry := object.get({"": "docker.io", "index.docker.io": "docker.io"}, host, host)
	repository := concat("", [object.get({"docker.io": {false: "library/"}}, [registry, contains(path, "/")], ""), path])
}

# METADATA
# scope: document
# description: |
#   The pod specs of the object this action writes (undefined for other actions): the
#   objects at the pod spec paths with a container list (containers, initContainers or
#   ephemeralContainers, of any type but null: known_action refuses one that is not a
#   list), so that a controller's own spec is not judged as a pod's. Every workload rule
#   reads pods through these.
write_pod_specs := [spec |
	some path in _pod_spec_paths
	spec := object.get(input.object, path, null)
	lists := [object.get(spec, "containers", null), object.get(spec, "initContainers", null)]
	[lists, object.get(spec, "ephemeralContainers", null)] != [[null, null], null]
] if {
	k8s_object_write
}

# A pod spec, not a controller's own spec: it has a container list. Inline in
# write_pod_specs, where a call would cost more than the three lookups.
_with_containers(spec) if {
	lists := [object.get(spec, "containers", null), object.get(spec, "initContainers", null)]
	[lists, object.get(spec, "ephemeralContainers", null)] != [[null, null], null]
}

# METADATA
# scope: document
# description: |
#   The distinct securityContexts of the written containers ({} for a container without
#   one). Workloads repeat one hardened context on every container, so a check that holds
#   for each distinct context holds for every container, at a fraction of the cost of
#   checking each container: most workloads have one or two. A container that is not an
#   object has none (known_action refuses it).
container_contexts contains object.get(entry.container, "securityContext", {}) if {
	some entry in write_containers
}

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
	# The common form first, without a comprehension: one distinct context, one pod spec.
	# OPA stops at the first body that holds.
	count(container_contexts) == 1
	some context in container_contexts
	object.remove(context, _hardened_context_fields) == {}
	context.allowPrivilegeEscalation == false
	context.capabilities == {"drop": ["ALL"]}
	object.get(context, "runAsNonRoot", true) == true
	user := object.get(context, "runAsUser", 1)
	is_number(user)
	user > 0
	seccomp := object.get(context, "seccompProfile", {"type": "RuntimeDefault"})
	seccomp.type in {"RuntimeDefault", "Localhost"}
	[spec] := write_pod_specs
	pod := spec.securityContext
	object.remove(pod, _hardened_pod_fields) == {}
	pod.runAsNonRoot == true
	pod.seccompProfile.type in {"RuntimeDefault", "Localhost"}
	pod_user := object.get(pod, "runAsUser", 1)
	is_number(pod_user)
	pod_user > 0
}

hardened if {
	count(write_containers) > 0
	count([1 |
		some context in container_contexts
		object.remove(context, _hardened_context_fields) == {}
		context.allowPrivilegeEscalation == false
		context.capabilities == {"drop": ["ALL"]}
		object.get(context, "runAsNonRoot", true) == true
		user := object.get(context, "runAsUser", 1)
		is_number(user)
		user > 0
		seccomp := object.get(context, "seccompProfile", {"type": "RuntimeDefault"})
		seccomp.type in {"RuntimeDefault", "Localhost"}
	]) == count(container_contexts)
	count([1 |
		some spec in write_pod_specs
		context := spec.securityContext
		object.remove(context, _hardened_pod_fields) == {}
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
pod_shape(obj) := [_without_resources(spec) |
	some spec in pod_specs(obj)
	_with_containers(spec)
]

_without_resources(spec) := object.union(spec, {field: [_no_resources(container) | some container in list] |
	some field in _container_fields
	list := spec[field]
	is_array(list)
})

_no_resources(container) := object.remove(container, ["resources"]) if is_object(container)

else := container
