# METADATA
# title: External exposure needs approval
# description: >-
#   A write that puts a workload within reach of the outside needs a human to agree:
#   a Service of type LoadBalancer not marked internal by an annotation in data; a
#   Service of type NodePort, which opens its ports on every node (so does a nodePort
#   on any type but LoadBalancer, whose node ports, allocated by the apiserver unless
#   allocateLoadBalancerNodePorts is false, are its own plumbing and judged with it);
#   externalIPs; and an Ingress or Gateway API object (Gateway listeners, HTTPRoute,
#   GRPCRoute, TLSRoute hostnames) that publishes a host the live object did not: a new
#   host name, or "*" for a rule, route or listener without one. A route with no
#   hostnames at all (TCPRoute, UDPRoute) counts as "*" when it is created. Ingresses
#   of a class in internal_ingress_classes (data) are exempt. Changing paths or backends
#   of hosts already published needs nothing.
# custom:
#   code: K8S-NET-001
#   severity: medium
#   mode: needs_approval
#   reached_by: [k8s_apply, gateway_rollback]
package rules.external_services

import data.lib

_params := data.params.rules.external_services

_reason := lib.approval_template(rego.metadata.chain(), {})

# The leading input equalities let OPA's rule index skip these bodies for every
# action that is not a Kubernetes write, without evaluating them; the kind, lower-cased
# once per decision, ends them for every other kind.
violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.kind == "service"
	lib.k8s_object_write
	input.object.spec.type == "LoadBalancer"
	not _internal
	msg := sprintf("Service '%s' of type LoadBalancer is not marked internal", [lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.kind == "service"
	lib.k8s_object_write
	count(input.object.spec.externalIPs) > 0
	msg := sprintf("Service '%s' sets externalIPs", [lib.target_name])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.kind == "service"
	lib.k8s_object_write
	input.object.spec.type == "NodePort"
	msg := sprintf("Service '%s' of type NodePort opens %s on every node", [lib.target_name, _node_ports_text])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.kind == "service"
	lib.k8s_object_write
	not input.object.spec.type in {"NodePort", "LoadBalancer"}
	count(_node_ports) > 0
	msg := sprintf("Service '%s' sets nodePort %s", [lib.target_name, _node_ports_text])
	reason := object.union(_reason, {"message": msg})
}

violation contains reason if {
	input.backend == "kubernetes"
	input.effect == "write"
	lib.kind in _published_kinds
	lib.k8s_object_write
	new_hosts := _hosts(input.object) - _hosts(object.get(input, "current", null))
	count(new_hosts) > 0
	not _internal_ingress
	msg := sprintf("%s '%s' publishes new host(s) %s", [
		input.object.kind,
		lib.target_name,
		concat(", ", sort(new_hosts)),
	])
	reason := object.union(_reason, {"message": msg})
}

_internal if {
	some key, value in _params.internal_annotations
	lower(input.object.metadata.annotations[key]) == lower(value)
}

_node_ports contains port.nodePort if {
	some port in input.object.spec.ports
	port.nodePort != null
	port.nodePort != 0
}

default _node_ports_text := "its ports"

_node_ports_text := concat(", ", [sprintf("%v", [port]) | some port in _node_ports]) if count(_node_ports) > 0

# -- Ingress and Gateway API -------------------------------------------------------

_published_kinds := {"ingress", "gateway", "httproute", "grpcroute", "tlsroute", "tcproute", "udproute"}

_gateway_api(obj) if startswith(obj.apiVersion, "gateway.networking.k8s.io/")

# The hosts an object publishes, "*" for a rule, listener or route without one; none
# for no object (a create) or an object of another API group.
_hosts(obj) := {object.get(rule, "host", "*") | some rule in obj.spec.rules} | _default_backend(obj) if {
	lower(obj.kind) == "ingress"
}

_hosts(obj) := {object.get(listener, "hostname", "*") | some listener in obj.spec.listeners} if {
	lower(obj.kind) == "gateway"
	_gateway_api(obj)
}

_hosts(obj) := _route_hostnames(object.get(obj, ["spec", "hostnames"], [])) if {
	lower(obj.kind) in {"httproute", "grpcroute", "tlsroute", "tcproute", "udproute"}
	_gateway_api(obj)
}

_hosts(null) := set()

_default_backend(obj) := {"*"} if obj.spec.defaultBackend

else := set()

_route_hostnames(hostnames) := {name | some name in hostnames} if count(hostnames) > 0

else := {"*"}

# The class by its field, or by the legacy annotation.
_internal_ingress if input.object.spec.ingressClassName in _internal_classes

_internal_ingress if input.object.metadata.annotations["kubernetes.io/ingress.class"] in _internal_classes

_internal_classes := {class | some class in _params.internal_ingress_classes}
