# METADATA
# title: GPUs need approval
# description: >-
#   GPU capacity is scarce and expensive. A container requesting or limiting a GPU
#   resource (names in data), or a Palette cluster with a GPU instance type (prefixes
#   in data), needs approval. A GPU quantity that cannot be parsed counts as a GPU.
# custom:
#   code: GPU-001
#   severity: medium
#   mode: needs_approval
#   reached_by: [k8s_apply, k8s_set_resources, palette_create_cluster, gateway_rollback]
package rules.gpu_resources

import data.lib

_reason := lib.approval_template(rego.metadata.chain(), {})

_verb := {"requests": "requests", "limits": "has a limit of"}

_gpu_names contains lower(name) if some name in data.params.rules.gpu_resources.resources

# The resource names any container requests or limits, each once: nearly always just
# cpu and memory, so the GPU names are compared with two names, not with every entry.
_resource_names contains name if {
	some entry in lib.write_containers
	some section in ["requests", "limits"]
	some name, _ in entry.container.resources[section]
}

_gpu_resources contains name if {
	some name in _resource_names
	lower(name) in _gpu_names
}

# The leading input equalities let OPA's rule index skip this body for every action
# that is not a Kubernetes write, without evaluating it.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	some name in _gpu_resources
	some entry in lib.write_containers
	some section in ["requests", "limits"]
	quantity := entry.container.resources[section][name]
	not _zero(quantity)
	msg := sprintf("%s '%s' %s %s %v", [entry.field, entry.name, _verb[section], name, quantity])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "palette"
	lib.change
	some pool in input.object.spec.machinepoolconfig
	instance_type := pool.cloudConfig.instanceType
	some prefix in data.params.rules.gpu_resources.instance_type_prefixes
	startswith(lower(instance_type), lower(prefix))
	pool_name := object.get(pool, ["poolConfig", "name"], "<unnamed>")
	msg := sprintf("machine pool '%s' uses GPU instance type %s", [pool_name, instance_type])
	reason := object.union(_reason, {"message": msg})
}

# A helper, not `not lib.quantity(q) == 0`, so an unparseable quantity counts as a GPU.
_zero(quantity) if lib.quantity(quantity) == 0
